"""Time one forward pass of the network in eager PyTorch, as an exported program and as an
AOTInductor package on this machine's CPU.

Each model size is timed at batch 1 after warm-up; the figure is the median of the timed
runs. Weights are random: the forward time does not depend on their values.

    python benchmarks/bench_backends.py --output benchmarks/results/backends.json
    python benchmarks/bench_backends.py --sizes tiny --repeats 5 --output /tmp/backends.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from protomtl_ros.network import InferenceGraph, ModelConfig, build_model  # noqa: E402
from protomtl_ros.runtime.backends.aoti import compile_aoti, load_aoti  # noqa: E402

BACKENDS = ("eager", "exported", "aoti")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write.")
    parser.add_argument(
        "--sizes", nargs="+", default=["tiny", "small"], choices=["tiny", "small", "paper"],
        help="Model sizes to time. Default: tiny small.",
    )
    parser.add_argument("--height", type=int, default=288, help="Input height. Default: 288.")
    parser.add_argument("--width", type=int, default=384, help="Input width. Default: 384.")
    parser.add_argument(
        "--warmup", type=int, default=3, help="Untimed runs before timing. Default: 3."
    )
    parser.add_argument("--repeats", type=int, default=15, help="Timed runs. Default: 15.")
    # One thread by default: on a machine shared with other jobs, more threads than free
    # cores makes every backend slower and the figures noisy.
    parser.add_argument(
        "--threads", type=int, default=1, help="torch intra-op threads. Default: 1."
    )
    args = parser.parse_args(argv)

    if args.height % 32 or args.width % 32:
        parser.error(f"--height {args.height} --width {args.width}: use multiples of 32")
    if args.warmup < 0 or args.repeats < 1:
        parser.error("--warmup must be >= 0 and --repeats >= 1")
    if args.threads < 1:
        parser.error(f"--threads {args.threads} is invalid: use 1 or more")

    return args


def median_forward_ms(runners: dict, image: torch.Tensor, warmup: int, repeats: int) -> dict:
    """Return the median wall time in milliseconds of each runner on `image`.

    The runners take turns within every repeat, so a change in load from other processes on
    the machine affects all of them alike.
    """
    times_ms = {name: [] for name in runners}
    with torch.no_grad():
        for _ in range(warmup):
            for run in runners.values():
                run(image)

        for _ in range(repeats):
            for name, run in runners.items():
                start = time.perf_counter()
                run(image)
                times_ms[name].append((time.perf_counter() - start) * 1000.0)

    return {name: statistics.median(values) for name, values in times_ms.items()}


def max_abs_difference(reference, outputs) -> float:
    """Return the largest absolute difference over the three outputs."""
    return max((a - b).abs().max().item() for a, b in zip(reference, outputs))


def bench_size(size: str, args: argparse.Namespace) -> dict:
    """Build one model size, compile it, and time every backend."""
    config = ModelConfig.for_size(
        size, input_height=args.height, input_width=args.width, pretrained=None
    )
    graph = InferenceGraph(build_model(config)).eval()
    image = torch.randn(1, 3, args.height, args.width, generator=torch.Generator().manual_seed(0))

    with torch.no_grad():
        start = time.perf_counter()
        program = torch.export.export(graph, (image,))
        export_s = time.perf_counter() - start

        start = time.perf_counter()
        package = compile_aoti(program)
        compile_s = time.perf_counter() - start

    runners = {
        "eager": graph,
        "exported": program.module(),
        "aoti": load_aoti(package, torch.device("cpu")),
    }

    with torch.no_grad():
        reference = graph(image)
        max_difference = {
            name: max_abs_difference(reference, run(image)) for name, run in runners.items()
        }

    forward_ms = median_forward_ms(runners, image, args.warmup, args.repeats)
    for name in BACKENDS:
        print(f"{size:6s} {name:9s} {forward_ms[name]:8.1f} ms", flush=True)

    return {
        "forward_ms": forward_ms,
        "max_abs_difference_vs_eager": max_difference,
        "export_s": export_s,
        "aoti_compile_s": compile_s,
        "aoti_package_bytes": len(package),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)

    results = {name: bench_size(name, args) for name in args.sizes}

    report = {
        "forward_ms": {name: result["forward_ms"] for name, result in results.items()},
        "aoti_speedup": {
            name: result["forward_ms"]["eager"] / result["forward_ms"]["aoti"]
            for name, result in results.items()
        },
        "max_abs_difference_vs_eager": {
            name: result["max_abs_difference_vs_eager"] for name, result in results.items()
        },
        "export_s": {name: result["export_s"] for name, result in results.items()},
        "aoti_compile_s": {name: result["aoti_compile_s"] for name, result in results.items()},
        "settings": {
            "input_hw": [args.height, args.width],
            "batch": 1,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "statistic": "median",
            "threads": args.threads,
        },
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    }

    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    for name, speedup in report["aoti_speedup"].items():
        print(f"{name}: AOTInductor is {speedup:.2f}x eager")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
