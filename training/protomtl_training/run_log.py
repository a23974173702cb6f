"""Run-folder outputs of rank 0: progress lines, TensorBoard, per-epoch JSONL/CSV, panels."""

import csv
import datetime
import json
import logging
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from protomtl_ros.network.tasks import IGNORE_INDEX, NYU13_PALETTE

from .data.transforms import denormalise_image

LOGGER = logging.getLogger("protomtl_training")


class RunLog:
    """Write the logs of one run into its folder; every method is a no-op off rank 0."""

    def __init__(self, output_dir, enabled: bool = True):
        self.output_dir = Path(output_dir)
        self.enabled = enabled
        self.writer = None
        if enabled:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.output_dir / "tensorboard"))

    def progress(self, step: int, total: int, terms: dict, lr: float, data_s: float,
                 iter_s: float, skipped: int):
        """Emit one fixed-field progress line and the TensorBoard scalars of a step."""
        if not self.enabled:
            return
        eta = datetime.timedelta(seconds=int(max(total - step, 0) * iter_s))
        losses = " ".join(f"{name} {value:.4f}" for name, value in terms.items())
        LOGGER.info("step %d/%d | eta %s | %s | lr %.3e | data %.3fs iter %.3fs | skipped %d",
                    step, total, eta, losses, lr, data_s, iter_s, skipped)
        for name, value in terms.items():
            self.writer.add_scalar(f"train/{name}", value, step)
        self.writer.add_scalar("train/lr", lr, step)

    def epoch_metrics(self, record: dict):
        """Append one evaluation record to metrics.jsonl and metrics.csv and TensorBoard."""
        if not self.enabled:
            return
        with open(self.output_dir / "metrics.jsonl", "a") as stream:
            stream.write(json.dumps(_json_safe(record)) + "\n")

        csv_path = self.output_dir / "metrics.csv"
        write_header = not csv_path.exists()
        with open(csv_path, "a", newline="") as stream:
            writer = csv.DictWriter(stream, fieldnames=list(record))
            if write_header:
                writer.writeheader()
            writer.writerow(record)

        for name, value in record.items():
            if "." in name and isinstance(value, float) and math.isfinite(value):
                self.writer.add_scalar(f"val/{name}", value, record["step"])
        self.writer.flush()

    def panels(self, batch: dict, outputs: dict, step: int, count: int):
        """Save a PNG with rows image | seg GT | seg pred | depth GT | pred | normals GT | pred."""
        if not self.enabled or count == 0:
            return
        rows = [_panel_row(batch, outputs, i) for i in range(min(count, len(batch["image"])))]
        grid = np.concatenate(rows, axis=0)
        folder = self.output_dir / "panels"
        folder.mkdir(exist_ok=True)
        Image.fromarray(grid).save(folder / f"step_{step:07d}.png")
        self.writer.add_image("val/panels", grid, step, dataformats="HWC")

    def close(self):
        if self.writer is not None:
            self.writer.close()


def _panel_row(batch, outputs, index):
    image = denormalise_image(batch["image"][index].float().cpu())
    image = (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
    gt_depth = batch["depth"][index, 0].cpu().numpy()
    max_depth = float(gt_depth.max()) if gt_depth.max() > 0 else 10.0
    tiles = [
        image,
        _colour_labels(batch["semseg"][index].cpu().numpy()),
        _colour_labels(outputs["semseg"][index].argmax(0).cpu().numpy()),
        _colour_depth(gt_depth, max_depth),
        _colour_depth(outputs["depth"][index, 0].float().cpu().numpy(), max_depth),
        _colour_normals(batch["normals"][index].cpu()),
        _colour_normals(outputs["normals"][index].float().cpu()),
    ]
    return np.concatenate(tiles, axis=1)


def _colour_labels(labels):
    palette = np.zeros((256, 3), dtype=np.uint8)
    palette[:len(NYU13_PALETTE)] = np.array(NYU13_PALETTE, dtype=np.uint8)
    palette[IGNORE_INDEX] = 0
    return palette[labels.clip(0, 255).astype(np.int64)]


def _colour_depth(depth, max_depth):
    # Grey ramp, near = bright; invalid (0) pixels stay black.
    level = 1.0 - np.clip(depth / max_depth, 0.0, 1.0)
    level[depth <= 0] = 0.0
    return np.repeat((level * 255).astype(np.uint8)[..., None], 3, axis=-1)


def _colour_normals(normals: torch.Tensor):
    colour = ((normals.permute(1, 2, 0).numpy() + 1.0) / 2.0 * 255.0).clip(0, 255)
    colour[normals.abs().sum(0).numpy() == 0] = 0
    return colour.astype(np.uint8)


def _json_safe(record):
    return {key: (None if isinstance(value, float) and not math.isfinite(value) else value)
            for key, value in record.items()}
