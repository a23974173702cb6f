"""Metric definitions checked against hand-computed cases."""

import math

import numpy as np
import pytest
import torch

from protomtl_training.metrics import METRIC_KEYS, MultiTaskMetrics


def one_hot_logits(class_ids, num_classes):
    return torch.nn.functional.one_hot(class_ids, num_classes).permute(0, 3, 1, 2).float()


def test_semseg_miou_skips_absent_class():
    metrics = MultiTaskMetrics(num_classes=4)
    # Ground truth 0 0 1 1 / 255 void; prediction 0 1 1 1 / 3. Class 2 is absent from both,
    # class 3 is predicted only on the void pixel (ignored), so it is absent as well.
    target = torch.tensor([[[0, 0, 1, 1, 255]]])
    pred = torch.tensor([[[0, 1, 1, 1, 3]]])
    metrics.update_semseg(pred, target, target != 255)
    result = metrics.compute()
    # IoU class 0 = 1 / 2, class 1 = 2 / 3; mean over the two present classes.
    assert result["semseg.miou"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert result["semseg.pixel_acc"] == pytest.approx(3 / 4)


def test_semseg_accumulates_over_batches():
    metrics = MultiTaskMetrics(num_classes=2)
    metrics.update_semseg(torch.tensor([[[0, 0]]]), torch.tensor([[[0, 0]]]),
                          torch.ones(1, 1, 2, dtype=torch.bool))
    metrics.update_semseg(torch.tensor([[[0, 1]]]), torch.tensor([[[1, 1]]]),
                          torch.ones(1, 1, 2, dtype=torch.bool))
    result = metrics.compute()
    # Confusion over all pixels: class 0 TP 2 FP 1 -> 2/3; class 1 TP 1 FN 1 -> 1/2.
    assert result["semseg.miou"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert result["semseg.pixel_acc"] == pytest.approx(3 / 4)


def test_depth_metrics_valid_pixels_only():
    metrics = MultiTaskMetrics(num_classes=2)
    target = torch.tensor([[[1.0, 2.0, 4.0, 0.0]]])
    pred = torch.tensor([[[1.5, 2.0, 2.0, 9.0]]])
    metrics.update_depth(pred, target, target > 0)
    result = metrics.compute()
    assert result["depth.abs_err"] == pytest.approx((0.5 + 0.0 + 2.0) / 3)
    assert result["depth.rel_err"] == pytest.approx((0.5 + 0.0 + 0.5) / 3)
    assert result["depth.rmse"] == pytest.approx(math.sqrt((0.25 + 0.0 + 4.0) / 3))
    # Ratios 1.5, 1.0, 2.0: only the exact pixel is within 1.25.
    assert result["depth.delta1"] == pytest.approx(1 / 3)


def normals_at_angles(degrees):
    radians = np.deg2rad(np.asarray(degrees, dtype=np.float64))
    vectors = np.stack([np.sin(radians), np.zeros_like(radians), -np.cos(radians)])
    return torch.tensor(vectors, dtype=torch.float32).view(1, 3, 1, -1)


def test_normals_exact_median_across_batches():
    metrics = MultiTaskMetrics(num_classes=2)
    target = normals_at_angles([0.0, 0.0, 0.0])
    # Batch medians would be 10 and 40 (mean 25); the exact median of all five is 20.
    first = normals_at_angles([5.0, 10.0, 20.0])
    second = normals_at_angles([40.0, 50.0])
    metrics.update_normals(first, target, torch.ones(1, 1, 3, dtype=torch.bool))
    metrics.update_normals(second, target[..., :2], torch.ones(1, 1, 2, dtype=torch.bool))
    result = metrics.compute()
    assert result["normals.median"] == pytest.approx(20.0, abs=1e-3)
    assert result["normals.mean"] == pytest.approx(25.0, abs=1e-3)
    assert result["normals.within_11_25"] == pytest.approx(2 / 5)
    assert result["normals.within_22_5"] == pytest.approx(3 / 5)
    assert result["normals.within_30"] == pytest.approx(3 / 5)


def test_normals_invalid_pixels_ignored():
    metrics = MultiTaskMetrics(num_classes=2)
    target = normals_at_angles([0.0, 0.0])
    pred = normals_at_angles([90.0, 0.0])
    valid = torch.tensor([[[False, True]]])
    metrics.update_normals(pred, target, valid)
    assert metrics.compute()["normals.mean"] == pytest.approx(0.0, abs=1e-3)


def test_opposite_normals_give_180_degrees():
    metrics = MultiTaskMetrics(num_classes=2)
    target = normals_at_angles([0.0])
    metrics.update_normals(-target, target, torch.ones(1, 1, 1, dtype=torch.bool))
    assert metrics.compute()["normals.mean"] == pytest.approx(180.0, abs=1e-3)


def test_full_update_reports_every_key():
    metrics = MultiTaskMetrics(num_classes=3)
    semseg = torch.tensor([[[0, 1], [2, 255]]])
    batch = {
        "semseg": semseg,
        "depth": torch.ones(1, 1, 2, 2),
        "normals": torch.tensor([0.0, 0.0, -1.0]).view(1, 3, 1, 1).expand(1, 3, 2, 2),
        "valid": {"semseg": semseg != 255, "depth": torch.ones(1, 2, 2, dtype=torch.bool),
                  "normals": torch.ones(1, 2, 2, dtype=torch.bool)},
    }
    outputs = {"semseg": one_hot_logits(semseg.clamp(max=2), 3),
               "depth": batch["depth"].clone(), "normals": batch["normals"].clone()}
    metrics.update(outputs, batch)
    result = metrics.compute()
    assert set(result) == set(METRIC_KEYS)
    assert result["semseg.miou"] == pytest.approx(1.0)
    assert result["depth.abs_err"] == pytest.approx(0.0)
    assert result["normals.median"] == pytest.approx(0.0, abs=1e-3)


def test_empty_accumulator_gives_nan():
    result = MultiTaskMetrics(num_classes=2).compute()
    assert math.isnan(result["semseg.miou"])
    assert math.isnan(result["depth.abs_err"])
    assert math.isnan(result["normals.median"])
