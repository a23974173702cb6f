"""Run the runtime benchmarks, merge their results into one JSON file and write the docs page.

Runs, each as a separate process: bench_backends.py (forward time per backend, tiny and
small), bench_node_latency.py (node overhead and bounded latency), bench_method_cost.py
(method against plain) and bench_node_memory.py (a short run). The merged file keeps the
"learning" entry of the previous output file, or takes it from
benchmarks/results/learning.json. docs/BENCHMARKS.md and docs/images/node_output_age.png are
rewritten.

    ROS_DOMAIN_ID=13 python benchmarks/run_all.py --output benchmarks/results/latest.json
    ROS_DOMAIN_ID=90 python benchmarks/run_all.py --quick --output /tmp/latest.json
"""

import argparse
import datetime
import json
import os
import platform
from pathlib import Path
import subprocess
import sys
import tempfile
import time

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO_ROOT / "benchmarks"
LEARNING_JSON = BENCHMARKS / "results" / "learning.json"
sys.path.insert(0, str(BENCHMARKS))

import report  # noqa: E402

# Arguments of each benchmark: (full run, --quick run). On a shared two-core AMD EPYC
# machine the --quick set took 3 minutes, mostly AOTInductor compilation, and the full set
# 5 minutes. The full set took 3.4 minutes on a two-core Intel Xeon machine.
BENCH_ARGS = {
    "backends": (["--sizes", "tiny", "small"],
                 ["--sizes", "tiny", "small", "--warmup", "1", "--repeats", "3"]),
    "node_latency": ([], ["--overhead-frames", "5", "--duration-s", "5"]),
    "method_cost": ([], ["--warmup", "1", "--repeats", "2"]),
    "node_memory": (["--frames", "1500", "--warmup-frames", "200"],
                    ["--frames", "200", "--warmup-frames", "50"]),
}
SCRIPTS = {
    "backends": "bench_backends.py",
    "node_latency": "bench_node_latency.py",
    "method_cost": "bench_method_cost.py",
    "node_memory": "bench_node_memory.py",
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="Merged JSON file to write.")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke run with few repeats and short node runs (a few minutes).")
    parser.add_argument("--docs", type=Path, default=report.DOCS_PATH,
                        help=f"Markdown page to write. Default: {report.DOCS_PATH}.")
    parser.add_argument("--timeout-s", type=float, default=900.0,
                        help="Time limit of each benchmark process in seconds. Default: 900.")
    return parser.parse_args(argv)


def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import torch
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def benchmark_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT / "training"), str(REPO_ROOT), env.get("PYTHONPATH", "")]
    ).rstrip(os.pathsep)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env.setdefault("FASTDDS_DEFAULT_PROFILES_FILE", str(REPO_ROOT / "config" / "fastdds_shm.xml"))
    env.setdefault("ROS_DOMAIN_ID", "13")
    return env


def run_benchmark(name: str, extra: list, output: Path, args) -> dict:
    """Run one benchmark script; return its JSON result or an "error" entry."""
    full, quick = BENCH_ARGS[name]
    command = [sys.executable, str(BENCHMARKS / SCRIPTS[name]), "--output", str(output),
               *(quick if args.quick else full), *extra]
    print(f"== {name}: {' '.join(command[1:])}", flush=True)
    start = time.perf_counter()
    try:
        completed = subprocess.run(command, cwd=REPO_ROOT, env=benchmark_env(),
                                   timeout=args.timeout_s)
        code = completed.returncode
    except subprocess.TimeoutExpired:
        code = "timeout"
    elapsed = round(time.perf_counter() - start, 1)
    print(f"== {name}: exit {code} after {elapsed} s", flush=True)
    if code != 0 or not output.is_file():
        return {"error": f"{SCRIPTS[name]} failed (exit {code}); rerun it alone for details",
                "wall_s": elapsed}
    result = json.loads(output.read_text())
    result["wall_s"] = elapsed
    return result


def export_model(folder: Path) -> Path:
    """Export the tiny network the node benchmarks load (random weights, 288x384)."""
    sys.path.insert(0, str(REPO_ROOT))
    import torch
    from protomtl_ros.network import ModelConfig, build_model
    from protomtl_ros.runtime import artifact

    torch.manual_seed(0)
    config = ModelConfig.for_size("tiny", input_height=288, input_width=384, pretrained=None)
    path = folder / "tiny_bench.pt2"
    artifact.save_artifact(path, build_model(config).eval(), config)
    return path


def previous_learning(output: Path):
    """Return the learning results of the previous merged file or of learning.json."""
    for path in (output, LEARNING_JSON):
        if path.is_file():
            try:
                content = json.loads(path.read_text())
            except json.JSONDecodeError:
                continue
            learning = content.get("learning") if path == output else content
            if learning:
                return learning
    return None


def merge(results: dict, args) -> dict:
    backends = results["backends"]
    latency = results["node_latency"]
    method = results["method_cost"]
    merged = {
        "quick": args.quick,
        "node_overhead_ratio": latency.get("node_overhead_ratio"),
        "output_age_p95_ratio": latency.get("output_age_p95_ratio"),
        "no_growing_queue": latency.get("no_growing_queue"),
        "forward_ms": backends.get("forward_ms"),
        "aoti_speedup": backends.get("aoti_speedup"),
        "method_inference_ratio": method.get("method_inference_ratio"),
        "method_train_step_ratio": method.get("method_train_step_ratio"),
        "memory": {k: v for k, v in results["node_memory"].items() if k != "samples"},
        "machine": machine_info(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "node_latency": latency,
        "method_cost": method,
        "backends": backends,
    }
    learning = previous_learning(args.output)
    if learning is not None:
        merged["learning"] = learning
    return merged


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="protomtl_bench_") as temporary:
        folder = Path(temporary)
        model = export_model(folder)
        model_args = {"node_latency": ["--model", str(model)],
                      "node_memory": ["--model-path", str(model)]}
        for name in SCRIPTS:
            results[name] = run_benchmark(name, model_args.get(name, []),
                                          folder / f"{name}.json", args)

    merged = merge(results, args)
    merged["wall_s"] = round(time.perf_counter() - started, 1)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(merged, indent=2) + "\n")
    report.plot_output_age(merged["node_latency"].get("latency"), report.AGE_PNG)
    report.write_markdown(merged, args.docs)
    print(f"wrote {args.output} and {args.docs} in {merged['wall_s']} s")

    failed = [name for name, result in results.items() if "error" in result]
    if failed:
        print(f"failed benchmarks: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
