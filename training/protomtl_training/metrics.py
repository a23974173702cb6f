"""Evaluation metrics shared by every method: one implementation, accumulated over a split.

- semseg: mIoU and pixel accuracy from a confusion matrix over all evaluated pixels, void
  ignored. A class absent from both prediction and ground truth is left out of the mean.
- depth, over pixels with valid ground truth: mean absolute error (m), mean relative error,
  RMSE (m) and delta1 (fraction with max(pred/gt, gt/pred) < 1.25).
- normals, over valid pixels: angle = acos(clamp(dot(pred, gt), -1, 1)) in degrees; mean,
  exact median over every pixel of the split, and the fractions within 11.25, 22.5, 30.
"""

import math

import numpy as np
import torch

METRIC_KEYS = (
    "semseg.miou", "semseg.pixel_acc",
    "depth.abs_err", "depth.rel_err", "depth.rmse", "depth.delta1",
    "normals.mean", "normals.median", "normals.within_11_25", "normals.within_22_5",
    "normals.within_30",
)

# Direction of improvement of each metric, for choosing the best checkpoint.
HIGHER_IS_BETTER = {
    "semseg.miou": True, "semseg.pixel_acc": True, "depth.abs_err": False,
    "depth.rel_err": False, "depth.rmse": False, "depth.delta1": True, "normals.mean": False,
    "normals.median": False, "normals.within_11_25": True, "normals.within_22_5": True,
    "normals.within_30": True,
}


class MultiTaskMetrics:
    """Accumulate predictions and ground truth over batches; compute() gives METRIC_KEYS."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.confusion = torch.zeros(num_classes, num_classes, dtype=torch.int64)
        self.depth_count = 0
        self.depth_sums = {"abs": 0.0, "rel": 0.0, "sq": 0.0, "delta1": 0.0}
        # Every valid pixel's angle is kept (float32), so the median is exact.
        self.angles = []

    def update(self, outputs: dict, batch: dict):
        """Add one batch: outputs of the model in eval mode, batch from a dataset."""
        valid = batch["valid"]
        self.update_semseg(outputs["semseg"].argmax(1), batch["semseg"], valid["semseg"])
        self.update_depth(outputs["depth"][:, 0], batch["depth"][:, 0], valid["depth"])
        self.update_normals(outputs["normals"], batch["normals"], valid["normals"])

    def update_semseg(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
        """Add class-id predictions [B,H,W] against targets, counting valid pixels only."""
        valid = valid & (target >= 0) & (target < self.num_classes)
        index = target[valid].cpu().long() * self.num_classes + pred[valid].cpu().long()
        counts = torch.bincount(index, minlength=self.num_classes ** 2)
        self.confusion += counts.reshape(self.num_classes, self.num_classes)

    def update_depth(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
        """Add depth [B,H,W] in metres over valid ground-truth pixels."""
        pred = pred[valid].double().cpu()
        target = target[valid].double().cpu()
        if target.numel() == 0:
            return
        error = (pred - target).abs()
        ratio = torch.maximum(pred / target, target / pred.clamp(min=1e-12))
        self.depth_count += target.numel()
        self.depth_sums["abs"] += float(error.sum())
        self.depth_sums["rel"] += float((error / target).sum())
        self.depth_sums["sq"] += float((error ** 2).sum())
        self.depth_sums["delta1"] += float((ratio < 1.25).sum())

    def update_normals(self, pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor):
        """Add normals [B,3,H,W] over valid pixels; predictions are unit vectors."""
        pred = pred.permute(0, 2, 3, 1)[valid]
        target = target.permute(0, 2, 3, 1)[valid]
        if target.shape[0] == 0:
            return
        cosine = (pred.double() * target.double()).sum(-1).clamp(-1.0, 1.0)
        degrees = torch.rad2deg(torch.acos(cosine))
        self.angles.append(degrees.float().cpu().numpy())

    def compute(self) -> dict:
        """Return the metrics; a task without any valid pixel gives NaN for its keys."""
        results = {}
        results.update(self._semseg())
        results.update(self._depth())
        results.update(self._normals())
        return results

    def _semseg(self):
        confusion = self.confusion.double()
        total = confusion.sum()
        if total == 0:
            return {"semseg.miou": math.nan, "semseg.pixel_acc": math.nan}
        true_positive = confusion.diag()
        union = confusion.sum(0) + confusion.sum(1) - true_positive
        present = union > 0
        iou = true_positive[present] / union[present]
        return {
            "semseg.miou": float(iou.mean()),
            "semseg.pixel_acc": float(true_positive.sum() / total),
        }

    def _depth(self):
        if self.depth_count == 0:
            return {key: math.nan for key in METRIC_KEYS if key.startswith("depth.")}
        count = self.depth_count
        return {
            "depth.abs_err": self.depth_sums["abs"] / count,
            "depth.rel_err": self.depth_sums["rel"] / count,
            "depth.rmse": math.sqrt(self.depth_sums["sq"] / count),
            "depth.delta1": self.depth_sums["delta1"] / count,
        }

    def _normals(self):
        if not self.angles:
            return {key: math.nan for key in METRIC_KEYS if key.startswith("normals.")}
        angles = np.concatenate(self.angles)
        return {
            "normals.mean": float(angles.mean(dtype=np.float64)),
            "normals.median": float(np.median(angles)),
            "normals.within_11_25": float((angles < 11.25).mean()),
            "normals.within_22_5": float((angles < 22.5).mean()),
            "normals.within_30": float((angles < 30.0).mean()),
        }

    def merge(self, other: "MultiTaskMetrics"):
        """Add another accumulator's counts (for results gathered from several processes)."""
        self.confusion += other.confusion
        self.depth_count += other.depth_count
        for key in self.depth_sums:
            self.depth_sums[key] += other.depth_sums[key]
        self.angles.extend(other.angles)


def trivial_predictions(batch: dict, num_classes: int, mean_depth: float, majority_class: int,
                        normal) -> dict:
    """Build constant predictions (one class, one depth, one normal) shaped like a batch."""
    depth = batch["depth"]
    batch_size, _, height, width = depth.shape
    logits = torch.zeros(batch_size, num_classes, height, width)
    logits[:, majority_class] = 1.0
    normals = torch.as_tensor(normal, dtype=torch.float32).view(1, 3, 1, 1)
    return {
        "semseg": logits,
        "depth": torch.full_like(depth, mean_depth),
        "normals": normals.expand(batch_size, 3, height, width).clone(),
    }
