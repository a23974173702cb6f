"""Time the eager forward pass of the network sizes and variants on the CPU.

Median of --repeats batch-1 forward passes after --warmup passes, at the network input
size (default 288 x 384), with a fixed number of torch threads. Prints a table and writes
JSON to --output.

    python benchmarks/bench_network.py --output benchmarks/results/network.json
"""

import argparse
import json
import os
import platform
import statistics
import time

import torch

from protomtl_ros.network import InferenceGraph, ModelConfig, build_model, count_parameters

CASES = (
    ("tiny", "protomtl"),
    ("tiny", "plain"),
    ("small", "protomtl"),
    ("small", "plain"),
)


def time_forward(graph, x, warmup: int, repeats: int) -> list[float]:
    """Run the graph warmup + repeats times; return the timed passes in milliseconds."""
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            graph(x)
        for _ in range(repeats):
            start = time.perf_counter()
            graph(x)
            times.append((time.perf_counter() - start) * 1000.0)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, help="path of the JSON result file")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default: 2)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed passes (default: 3)")
    parser.add_argument("--repeats", type=int, default=10, help="timed passes (default: 10)")
    parser.add_argument("--height", type=int, default=288, help="input height (default: 288)")
    parser.add_argument("--width", type=int, default=384, help="input width (default: 384)")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    x = torch.randn(1, 3, args.height, args.width)

    results = []
    print(f"{'size':<7}{'variant':<10}{'params':>12}{'median ms':>11}{'min ms':>9}{'max ms':>9}")
    for size, variant in CASES:
        config = ModelConfig.for_size(size, variant=variant, input_height=args.height,
                                      input_width=args.width)
        graph = InferenceGraph(build_model(config))
        times = time_forward(graph, x, args.warmup, args.repeats)
        row = {
            "size": size, "variant": variant,
            "parameters": count_parameters(config)["inference"],
            "median_ms": statistics.median(times), "min_ms": min(times), "max_ms": max(times),
            "times_ms": times,
        }
        results.append(row)
        print(f"{size:<7}{variant:<10}{row['parameters']:>12,}{row['median_ms']:>11.1f}"
              f"{row['min_ms']:>9.1f}{row['max_ms']:>9.1f}")

    report = {
        "benchmark": "network_forward_eager",
        "input_size": [args.height, args.width],
        "batch": 1,
        "threads": args.threads,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as handle:
        json.dump(report, handle, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
