"""Compare what the method and the plain multi-task network learn from partial labels.

Every configuration trains the tiny network from random weights on procedural indoor scenes
for the same number of steps, once per seed, through the training package's engine
(protomtl_training.engine.run_training). Each trained model is then evaluated on held-out
scenes of the "test" split, which no run uses for training or validation. Configurations:
plain and method under "onelabel" and "randomlabels", plain with full labels, and two
ablations of the method under "onelabel": AKG off (loss weight 0) and TAE off.

The result (metrics per run, mean and spread per configuration, validation curves) is
written to --output, merged into benchmarks/results/latest.json under "learning", and
docs/BENCHMARKS.md is regenerated.

    python benchmarks/bench_learning.py --output benchmarks/results/learning.json
    python benchmarks/bench_learning.py --quick --output /tmp/learning.json
"""

import argparse
import dataclasses
import datetime
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "training"))
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from protomtl_ros.runtime.checkpoint import model_from_checkpoint  # noqa: E402
from protomtl_training.config import load_config  # noqa: E402
from protomtl_training.data import build_datasets  # noqa: E402
from protomtl_training.engine import evaluate, run_training  # noqa: E402
from protomtl_training.metrics import HIGHER_IS_BETTER, METRIC_KEYS  # noqa: E402

import report  # noqa: E402

LATEST = REPO_ROOT / "benchmarks" / "results" / "latest.json"
CURVES_PNG = REPO_ROOT / "docs" / "images" / "learning_curves.png"


@dataclasses.dataclass(frozen=True)
class Setting:
    """One trained configuration: a name and its training-config overrides."""

    name: str
    description: str
    overrides: tuple


SETTINGS = (
    Setting("plain_onelabel", "plain, one task labelled per image",
            ("model.variant=plain", "data.labels=onelabel")),
    Setting("method_onelabel", "method, one task labelled per image",
            ("model.variant=protomtl", "data.labels=onelabel")),
    Setting("plain_randomlabels", "plain, random subset of tasks labelled",
            ("model.variant=plain", "data.labels=randomlabels")),
    Setting("method_randomlabels", "method, random subset of tasks labelled",
            ("model.variant=protomtl", "data.labels=randomlabels")),
    Setting("plain_full", "plain, every task labelled",
            ("model.variant=plain", "data.labels=full")),
    Setting("method_no_akg_onelabel", "method without AKG (akg_weight 0), onelabel",
            ("model.variant=protomtl", "data.labels=onelabel", "loss.akg_weight=0")),
    Setting("method_no_tae_onelabel", "method without TAE, onelabel",
            ("model.variant=protomtl", "data.labels=onelabel", "model.tae_enabled=false")),
)


@dataclasses.dataclass
class LearningOptions:
    """Run length and data sizes shared by every configuration."""

    steps: int = 300
    seeds: tuple = (0, 1)
    height: int = 64
    width: int = 96
    batch_size: int = 4
    train_scenes: int = 160
    val_scenes: int = 16
    test_scenes: int = 32
    eval_every_epochs: int = 1
    lr: float = 2e-3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="JSON file to write.")
    parser.add_argument("--steps", type=int, default=None,
                        help="Training steps per run. Default: 300 (20 with --quick).")
    parser.add_argument("--seeds", type=int, default=None,
                        help="Seeds per configuration (0, 1, ...). Default: 2 (1 with --quick).")
    parser.add_argument("--settings", nargs="+", default=[s.name for s in SETTINGS],
                        choices=[s.name for s in SETTINGS],
                        help="Configurations to train. Default: all.")
    parser.add_argument("--quick", action="store_true",
                        help="Smoke run: few steps and scenes, one seed; the figures are not "
                        "meaningful.")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads. Default: 1.")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="Folder for the run folders. Default: a temporary folder.")
    parser.add_argument("--no-merge", action="store_true",
                        help="Do not merge into benchmarks/results/latest.json or rewrite "
                        "docs/BENCHMARKS.md.")
    args = parser.parse_args(argv)

    options = LearningOptions()
    if args.quick:
        options = dataclasses.replace(options, steps=20, seeds=(0,), train_scenes=24,
                                      val_scenes=8, test_scenes=8)
    if args.steps is not None:
        if args.steps < 1:
            parser.error(f"--steps {args.steps} is invalid: use 1 or more")
        options = dataclasses.replace(options, steps=args.steps)
    if args.seeds is not None:
        if args.seeds < 1:
            parser.error(f"--seeds {args.seeds} is invalid: use 1 or more")
        options = dataclasses.replace(options, seeds=tuple(range(args.seeds)))
    if args.threads < 1:
        parser.error(f"--threads {args.threads} is invalid: use 1 or more")
    args.options = options
    return args


def training_config(setting: Setting, seed: int, options: LearningOptions):
    """Return the validated training config of one run."""
    overrides = [
        "model.size=tiny",
        "model.pretrained=null",
        f"model.input_height={options.height}",
        f"model.input_width={options.width}",
        "data.dataset=scenes",
        f"data.num_train_scenes={options.train_scenes}",
        f"data.num_val_scenes={options.val_scenes}",
        f"data.label_seed={seed}",
        f"train.seed={seed}",
        f"train.max_steps={options.steps}",
        f"train.batch_size={options.batch_size}",
        f"train.lr={options.lr}",
        f"train.eval_every_epochs={options.eval_every_epochs}",
        f"train.log_every={max(options.steps, 1)}",
        "train.num_panels=0",
        *setting.overrides,
    ]
    return load_config(None, overrides)


def evaluate_on_test(checkpoint: Path, config, options: LearningOptions) -> dict:
    """Evaluate a trained checkpoint on the test-split scenes with the training metrics."""
    network, model_config = model_from_checkpoint(checkpoint)
    data_config = dataclasses.replace(config.data, val_split="test", augment=False,
                                      num_val_scenes=options.test_scenes, extra_manifest=None)
    _, test_set = build_datasets(data_config, model_config.input_height,
                                 model_config.input_width)
    loader = torch.utils.data.DataLoader(test_set, batch_size=options.batch_size)
    metrics, _ = evaluate(network, loader, torch.device("cpu"), model_config.num_classes)
    return {key: float(metrics[key]) for key in METRIC_KEYS}


def read_curve(run_dir: Path) -> list:
    """Return the validation records (step and metrics) written during training."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [{"step": r["step"], **{k: r.get(k) for k in METRIC_KEYS}} for r in records]


def train_one(setting: Setting, seed: int, options: LearningOptions, work_dir: Path) -> dict:
    config = training_config(setting, seed, options)
    run_dir = work_dir / f"{setting.name}_seed{seed}"
    start = time.perf_counter()
    summary = run_training(config, run_dir)
    train_s = time.perf_counter() - start
    test = evaluate_on_test(run_dir / "last.pt", config, options)
    return {
        "seed": seed,
        "steps": summary["step"],
        "skipped_steps": summary["skipped_steps"],
        "wall_s": round(train_s, 1),
        "test": test,
        "validation_curve": read_curve(run_dir),
    }


def aggregate(runs: list) -> dict:
    """Return mean and spread (sample standard deviation, 0 for one seed) of each metric."""
    result = {}
    for key in METRIC_KEYS:
        values = [run["test"][key] for run in runs]
        result[key] = {
            "mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "min": min(values),
            "max": max(values),
        }
    return result


def plot_curves(configurations: dict, path: Path) -> None:
    """Plot the seed-mean validation curves of every configuration for three metrics."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = ("semseg.miou", "depth.abs_err", "normals.mean")
    figure, axes = plt.subplots(1, len(metrics), figsize=(15, 4.5))
    for name, entry in configurations.items():
        curves = [run["validation_curve"] for run in entry["runs"] if run["validation_curve"]]
        if not curves:
            continue
        length = min(len(curve) for curve in curves)
        steps = [curves[0][i]["step"] for i in range(length)]
        for axis, metric in zip(axes, metrics):
            values = [statistics.fmean(curve[i][metric] for curve in curves)
                      for i in range(length)]
            axis.plot(steps, values, marker="o", markersize=3, label=name)
    for axis, metric in zip(axes, metrics):
        better = "higher" if HIGHER_IS_BETTER[metric] else "lower"
        axis.set_title(f"validation {metric} ({better} is better)")
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)


def main(argv=None) -> int:
    args = parse_args(argv)
    options = args.options
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    selected = [s for s in SETTINGS if s.name in args.settings]

    started = time.perf_counter()
    configurations = {}
    with tempfile.TemporaryDirectory(prefix="protomtl_learning_") as temporary:
        work_dir = args.work_dir or Path(temporary)
        for setting in selected:
            runs = []
            for seed in options.seeds:
                print(f"training {setting.name} seed {seed} ({options.steps} steps)", flush=True)
                runs.append(train_one(setting, seed, options, work_dir))
                test = runs[-1]["test"]
                print(f"  test miou {test['semseg.miou']:.4f} depth abs_err "
                      f"{test['depth.abs_err']:.4f} normals mean {test['normals.mean']:.2f} "
                      f"({runs[-1]['wall_s']} s)", flush=True)
            configurations[setting.name] = {
                "description": setting.description,
                "overrides": list(setting.overrides),
                "summary": aggregate(runs),
                "runs": runs,
            }

    plot_path = None if args.no_merge else CURVES_PNG
    if plot_path is not None:
        plot_curves(configurations, plot_path)

    result = {
        "quick": args.quick,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name] + sys.argv),
        "settings": dataclasses.asdict(options),
        "data": "procedural scenes; trained on split train, evaluated on split test",
        "statistic": "mean and sample standard deviation over seeds",
        "wall_s": round(time.perf_counter() - started, 1),
        "curves_png": str(plot_path.relative_to(REPO_ROOT)) if plot_path else None,
        "configurations": configurations,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")

    if not args.no_merge:
        latest = json.loads(LATEST.read_text()) if LATEST.is_file() else {}
        latest["learning"] = result
        LATEST.parent.mkdir(parents=True, exist_ok=True)
        LATEST.write_text(json.dumps(latest, indent=2) + "\n")
        report.write_markdown(latest, report.DOCS_PATH)
        print(f"merged into {LATEST} and wrote {report.DOCS_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
