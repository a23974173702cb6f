"""Train the multi-task network on partially labelled data.

    python training/train.py                                  # tiny model, shipped data
    python training/train.py --config config/training/nyuv2_resnet18.yaml data.root=/data/nyuv2
    python training/train.py --output-dir runs/a --resume train.max_steps=600
    torchrun --nproc_per_node 2 training/train.py --config FILE   # DDP, one GPU per process

Overrides are dotted key=value pairs (section.key=value, value read as YAML). The run folder
receives config.yaml, tensorboard/, metrics.jsonl, metrics.csv, panels/, last.pt, best.pt.
"""

import argparse
import logging
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from protomtl_training.checkpoint import CheckpointError  # noqa: E402
from protomtl_training.config import ConfigError, load_config  # noqa: E402
from protomtl_training.data import DataError  # noqa: E402
from protomtl_training.engine import run_training  # noqa: E402

DEFAULT_CONFIG = REPO_ROOT / "config" / "training" / "tiny_scenes.yaml"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None,
                        help="training config YAML (default: the config.yaml of --output-dir "
                        "with --resume, else config/training/tiny_scenes.yaml)")
    parser.add_argument("--output-dir", type=Path, default=None,
                        help="run folder (default: runs/<config name>-<date-time>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from <output-dir>/last.pt with its optimizer, schedule, "
                        "step, RNG states and data order")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, for example train.max_steps=50 data.labels=full")
    return parser.parse_args(argv)


def resolve_paths(args):
    """Return (config file, output folder) from the command-line arguments."""
    if args.resume and args.output_dir is None:
        raise ConfigError("--resume requires --output-dir: the run folder that contains last.pt")
    config_path = args.config
    if config_path is None:
        saved = args.output_dir / "config.yaml" if args.resume else None
        config_path = saved if saved is not None and saved.is_file() else DEFAULT_CONFIG
    output_dir = args.output_dir
    if args.resume and not (output_dir / "last.pt").is_file():
        raise ConfigError(f"--resume: {output_dir / 'last.pt'} not found; pass the run folder "
                          "of an earlier training run, or drop --resume to start a new run")
    if not args.resume and output_dir is not None and any(
            (output_dir / name).exists() for name in ("last.pt", "best.pt")):
        raise ConfigError(f"{output_dir} already contains a training run; add --resume to "
                          "continue it, or choose another --output-dir")
    if output_dir is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        output_dir = Path("runs") / f"{config_path.stem}-{stamp}"
    return config_path, output_dir


def main(argv=None):
    args = parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S")
    try:
        config_path, output_dir = resolve_paths(args)
        config = load_config(config_path, args.overrides)
    except ConfigError as error:
        sys.exit(f"error: {error}")

    if rank == 0:
        logging.getLogger("protomtl_training").info("config %s, run folder %s", config_path,
                                                    output_dir)
    try:
        summary = run_training(config, output_dir, resume=args.resume)
    except (CheckpointError, DataError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    if rank == 0:
        logging.getLogger("protomtl_training").info(
            "finished at step %d (skipped %d), best %s %s", summary["step"],
            summary["skipped_steps"], config.train.best_metric, summary["best_metric"])


if __name__ == "__main__":
    main()
