"""Write docs/BENCHMARKS.md and its plots from the merged benchmark results (latest.json)."""

import math
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS_PATH = REPO_ROOT / "docs" / "BENCHMARKS.md"
AGE_PNG = REPO_ROOT / "docs" / "images" / "node_output_age.png"

# (key, description, target): a ratio passes when it is at or below its target.
RATIO_TARGETS = (
    ("node_overhead_ratio",
     "node end-to-end time / bare forward time, one frame at a time", 1.05),
    ("output_age_p95_ratio",
     "p95 output age / node inference time, 30 Hz camera, inference slower than 33 ms", 1.5),
)


def format_number(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def verdict(passed) -> str:
    if passed is None:
        return "not measured"
    return "pass" if passed else "FAIL"


def plot_output_age(latency: dict, path: Path) -> bool:
    """Plot output age over time of the bounded-latency run; return False without samples."""
    samples = (latency or {}).get("samples") or []
    if not samples:
        return False
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    times = [sample[0] for sample in samples]
    ages = [sample[1] for sample in samples]
    figure, axis = plt.subplots(figsize=(8, 3.5))
    axis.plot(times, ages, marker=".", linewidth=0.8, label="output age")
    axis.axhline(latency["inference_ms"], color="grey", linestyle="--",
                 label=f"node inference time ({latency['inference_ms']:.0f} ms)")
    axis.axhline(latency["output_age_p95_ms"], color="tab:red", linestyle=":",
                 label=f"p95 age ({latency['output_age_p95_ms']:.0f} ms)")
    axis.set_xlabel("time since the first answered frame (s)")
    axis.set_ylabel("age at arrival (ms)")
    axis.set_ylim(bottom=0)
    axis.set_title(f"perception node output age, camera at {latency['rate_hz']:.0f} Hz")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return True


def runtime_section(results: dict) -> list:
    lines = ["## Runtime", ""]
    if results.get("quick"):
        lines += ["These figures come from a `--quick` smoke run (few repeats, short runs); "
                  "they show that the benchmarks work, not what the machine can do.", ""]
    lines += ["| Figure | Value | Target | Result |", "|---|---|---|---|"]
    for key, description, target in RATIO_TARGETS:
        value = results.get(key)
        passed = None if value is None else value <= target
        lines.append(f"| `{key}`: {description} | {format_number(value, 3)} | <= {target} "
                     f"| {verdict(passed)} |")
    latency = results.get("node_latency", {}).get("latency", {})
    if "no_growing_queue" in latency:
        lines.append(
            f"| `no_growing_queue`: age growth over the run "
            f"({format_number(latency['age_growth_over_run_ms'], 1)} ms) below half an "
            f"inference time | {latency['no_growing_queue']} | true "
            f"| {verdict(latency['no_growing_queue'])} |")
    for key, description in (
        ("method_inference_ratio", "method / plain forward time, batch 1"),
        ("method_train_step_ratio", "method / plain training step (forward, loss, backward, "
         "Adam)"),
    ):
        lines.append(f"| `{key}`: {description} | {format_number(results.get(key), 3)} "
                     "| no target | recorded |")
    lines.append("")

    overhead = results.get("node_latency", {}).get("overhead", {})
    if overhead:
        lines += [
            f"Overhead run: {overhead['frames']} sequential 640x480 rgb8 frames, median "
            f"end-to-end {format_number(overhead['end_to_end_median_ms'], 1)} ms (publish "
            "until the last of the six outputs arrives) against a median bare forward pass of "
            f"{format_number(overhead['bare_forward_median_ms'], 1)} ms of the same artifact. "
            "The end-to-end time also contains resizing, normalisation, output upscaling, "
            "colour images and DDS transport.",
            "",
        ]
        node = overhead.get("node")
        if node:
            rest = overhead["end_to_end_median_ms"] - node["node_inference_mean_ms"]
            lines[-1:-1] = [
                f"Inside the node, over the same {node['frames']} frames (means from "
                "/diagnostics): forward pass "
                f"{format_number(node['node_forward_mean_ms'], 1)} ms, inference "
                "(preprocessing, forward, postprocessing, output checks) "
                f"{format_number(node['node_inference_mean_ms'], 1)} ms. The remaining "
                f"{format_number(rest, 1)} ms of the end-to-end median are the input "
                "transport and conversion, colour images, output messages and their "
                "transport.",
            ]
    if latency:
        lines += [
            f"Latency run: {latency['frames_sent']} frames at {latency['rate_hz']:.0f} Hz, "
            f"{latency['frames_answered']} answered (the node keeps only the newest frame). "
            f"Median age {format_number(latency['output_age_median_ms'], 1)} ms, p95 "
            f"{format_number(latency['output_age_p95_ms'], 1)} ms; inference time "
            f"{format_number(latency['inference_ms'], 1)} ms from the "
            f"{latency['inference_time_source']}. Median age in the first half "
            f"{format_number(latency['first_half_median_age_ms'], 1)} ms, second half "
            f"{format_number(latency['second_half_median_age_ms'], 1)} ms.",
            "",
        ]
        if AGE_PNG.is_file():
            lines += [f"![output age over time](images/{AGE_PNG.name})", ""]
    return lines


def backend_section(results: dict) -> list:
    forward = results.get("forward_ms") or {}
    if not forward:
        return []
    lines = ["## Forward time per backend", "",
             "Median batch-1 forward time in ms at 288x384 on the CPU, random weights.", "",
             "| Size | eager | exported | AOTInductor | AOTInductor speed-up |",
             "|---|---|---|---|---|"]
    for size, values in forward.items():
        speedup = (results.get("aoti_speedup") or {}).get(size)
        lines.append(f"| {size} | {format_number(values.get('eager'), 1)} | "
                     f"{format_number(values.get('exported'), 1)} | "
                     f"{format_number(values.get('aoti'), 1)} | "
                     f"{format_number(speedup, 2)}x |")
    return lines + [""]


def memory_section(results: dict) -> list:
    memory = results.get("memory") or {}
    if "frames" not in memory:
        return ["## Node memory", "", "Not measured: bench_node_memory.py failed.", ""]
    return [
        "## Node memory", "",
        f"Resident memory of the node over {memory['frames']} frames of "
        f"{memory['frame_size'][1]}x{memory['frame_size'][0]} at {memory['rate_hz']:.0f} Hz "
        f"after {memory['warmup_frames']} warm-up frames: "
        f"{memory['baseline_rss_mib']} MiB at the start, {memory['final_rss_mib']} MiB at the "
        f"end, maximum {memory['max_rss_mib']} MiB, growth {memory['growth_percent']} %. "
        "No target is set; a steady rise over a longer run would show a leak.",
        "",
    ]


def learning_section(learning: dict) -> list:
    if not learning:
        return ["## Learning under partial labels", "",
                "Not measured yet: run `make bench-learning`.", ""]
    settings = learning["settings"]
    lines = ["## Learning under partial labels", ""]
    if learning.get("quick"):
        lines += ["These figures come from a `--quick` smoke run and say nothing about "
                  "the method.", ""]
    lines += [
        f"Tiny network, {settings['height']}x{settings['width']}, {settings['steps']} steps "
        f"of batch {settings['batch_size']}, seeds {list(settings['seeds'])}, trained on "
        f"{settings['train_scenes']} procedural scenes and evaluated on "
        f"{settings['test_scenes']} test-split scenes. Mean ± sample standard deviation over "
        f"seeds (no spread with one seed). Date {learning['date']}, command "
        f"`{learning['command']}`, "
        f"{learning['wall_s']} s in total.",
        "",
        "| Configuration | mIoU ↑ | pixel acc ↑ | depth abs err ↓ | depth δ1 ↑ "
        "| normals mean ° ↓ | normals within 22.5° ↑ | s per run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in learning["configurations"].items():
        summary = entry["summary"]
        cells = []
        for key in ("semseg.miou", "semseg.pixel_acc", "depth.abs_err", "depth.delta1",
                    "normals.mean", "normals.within_22_5"):
            digits = 2 if key == "normals.mean" else 4
            cell = format_number(summary[key]["mean"], digits)
            if len(entry["runs"]) > 1:
                cell += f" ± {format_number(summary[key]['std'], digits)}"
            cells.append(cell)
        wall = sum(run["wall_s"] for run in entry["runs"]) / len(entry["runs"])
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {wall:.0f} |")
    lines += ["", "Seconds per run are wall-clock times; they grow when other jobs share the "
              "CPU.", ""]
    lines += method_gain_lines(learning["configurations"])
    if learning.get("curves_png"):
        lines += [f"![validation curves](images/{Path(learning['curves_png']).name})", ""]
    return lines


# Metrics compared in the method-minus-plain table, with True where lower is better.
GAIN_METRICS = (("semseg.miou", False), ("depth.abs_err", True), ("normals.mean", True))


def method_gain_lines(configurations: dict) -> list:
    """Table of method minus plain per label setting, next to the larger seed spread."""
    rows = []
    for labels in ("onelabel", "randomlabels"):
        method = configurations.get(f"method_{labels}")
        plain = configurations.get(f"plain_{labels}")
        if method is None or plain is None:
            continue
        cells = []
        for key, lower_is_better in GAIN_METRICS:
            difference = method["summary"][key]["mean"] - plain["summary"][key]["mean"]
            spread = max(method["summary"][key]["std"], plain["summary"][key]["std"])
            better = difference < 0 if lower_is_better else difference > 0
            digits = 2 if key == "normals.mean" else 4
            cells.append(f"{difference:+.{digits}f} ({'better' if better else 'worse'}; "
                         f"spread {spread:.{digits}f})")
        rows.append(f"| {labels} | " + " | ".join(cells) + " |")
    if not rows:
        return []
    return [
        "Method minus plain, difference of the means; the spread is the larger of the two "
        "sample standard deviations over seeds. A difference smaller than the spread is "
        "within seed noise.",
        "",
        "| Labels | mIoU | depth abs err (m) | normals mean (°) |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def write_markdown(results: dict, path: Path = DOCS_PATH) -> None:
    """Write the benchmark page from the merged results."""
    machine = results.get("machine", {})
    lines = [
        "# Benchmarks", "",
        "Generated by `benchmarks/run_all.py` (`make bench`) and "
        "`benchmarks/bench_learning.py` (`make bench-learning`) from "
        "`benchmarks/results/latest.json`; do not edit by hand.", "",
        f"- Date: {results.get('date', 'n/a')}",
        f"- Machine: {machine.get('cpu', 'n/a')}, {machine.get('cores', 'n/a')} cores, "
        f"torch {machine.get('torch', 'n/a')}",
        f"- Command: `{results.get('command', 'n/a')}`",
        "",
    ]
    lines += runtime_section(results)
    lines += backend_section(results)
    lines += memory_section(results)
    lines += learning_section(results.get("learning"))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip() + "\n")
