"""Evaluate a training checkpoint on the validation/test split of its dataset.

    python training/evaluate.py --checkpoint runs/a/best.pt
    python training/evaluate.py --checkpoint best.pt \\
        --config config/training/nyuv2_resnet18.yaml data.root=/data/nyuv2 --output out.json

Without --config, the data settings saved inside the checkpoint are used. The metric keys
are those of protomtl_training.metrics.METRIC_KEYS; the table is printed and, with --output,
written as JSON.
"""

import argparse
import dataclasses
import json
import logging
import math
import sys
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from protomtl_ros.network import ModelConfig, build_model  # noqa: E402
from protomtl_ros.runtime.engine import check_device  # noqa: E402
from protomtl_ros.runtime.errors import ModelLoadError  # noqa: E402
from protomtl_training.checkpoint import CheckpointError, load_checkpoint  # noqa: E402
from protomtl_training.config import (ConfigError, config_from_dict, load_config,  # noqa: E402
                                      apply_override)
from protomtl_training.data import DataError, build_datasets  # noqa: E402
from protomtl_training.engine import evaluate, resolve_data_path  # noqa: E402
from protomtl_training.metrics import METRIC_KEYS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True, help="last.pt or best.pt")
    parser.add_argument("--config", type=Path, default=None,
                        help="config YAML for the data (default: the one saved in the "
                        "checkpoint)")
    parser.add_argument("--output", type=Path, default=None, help="write the metrics as JSON")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default: cpu)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, for example data.val_split=val")
    return parser.parse_args(argv)


def evaluation_config(args, content):
    """Return the Config whose data section selects the evaluated split."""
    if args.config is not None:
        return load_config(args.config, args.overrides)
    values = content.get("train_config")
    if values is None:
        raise ConfigError(f"{args.checkpoint} contains no train_config: pass --config")
    values = {key: dict(value) for key, value in values.items()}
    for override in args.overrides:
        apply_override(values, override)
    return config_from_dict(values)


def format_table(metrics: dict) -> str:
    lines = [f"{'metric':<24} {'value':>10}"]
    for key in METRIC_KEYS:
        value = metrics[key]
        lines.append(f"{key:<24} {'n/a' if math.isnan(value) else f'{value:10.4f}':>10}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        content = load_checkpoint(args.checkpoint)
        config = evaluation_config(args, content)
    except (CheckpointError, ConfigError) as error:
        sys.exit(f"error: {error}")

    model_config = ModelConfig.from_dict(dict(content["model_config"], pretrained=None))
    network = build_model(model_config)
    network.load_state_dict(content["model"])
    try:
        device = check_device(args.device)
    except ModelLoadError as error:
        sys.exit(f"error: --device: {error}")
    network.to(device).eval()
    if config.train.cpu_threads:
        torch.set_num_threads(config.train.cpu_threads)

    data_config = dataclasses.replace(
        config.data, augment=False, root=resolve_data_path(config.data.root),
        manifest=resolve_data_path(config.data.manifest),
        extra_manifest=resolve_data_path(config.data.extra_manifest))
    try:
        _, val_set = build_datasets(data_config, model_config.input_height,
                                    model_config.input_width)
    except (DataError, FileNotFoundError) as error:
        sys.exit(f"error: {error}")
    loader = torch.utils.data.DataLoader(val_set, batch_size=config.train.batch_size,
                                         num_workers=config.data.num_workers)
    metrics, _ = evaluate(network, loader, device, model_config.num_classes)

    print(f"{args.checkpoint} on {config.data.dataset} split {config.data.val_split} "
          f"({len(val_set)} images)")
    print(format_table(metrics))
    if args.output is not None:
        result = {key: (None if math.isnan(value) else value) for key, value in metrics.items()}
        result["images"] = len(val_set)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return metrics


if __name__ == "__main__":
    main()
