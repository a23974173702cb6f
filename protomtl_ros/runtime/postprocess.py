"""Turn network outputs at the network size into Predictions at the input image size."""

from concurrent.futures import Executor
import math

import cv2
import numpy as np
import torch

from .errors import InvalidOutputError
from .predictions import Predictions


def postprocess(semseg_logits: torch.Tensor, depth: torch.Tensor, normals: torch.Tensor,
                output_size, min_depth_m: float, max_depth_m: float,
                executor: Executor | None = None) -> Predictions:
    """Resize one frame's outputs (batch 1) to `output_size` (H, W) and mark invalid pixels.

    With an `executor`, the normals are resized on one of its threads while this thread does
    depth and class ids; OpenCV and numpy release the GIL, so the two run in parallel.
    """
    size = tuple(int(v) for v in output_size)
    if executor is None:
        resized_normals = normals_to_image(normals[0:1], size)
    else:
        pending = executor.submit(normals_to_image, normals[0:1], size)
    try:
        depth_image = depth_to_image(depth[0:1], size, min_depth_m, max_depth_m)
        class_ids = class_ids_to_image(semseg_logits[0:1], size)
    finally:
        if executor is not None:
            # Wait even when this thread failed, so no work of this frame outlives it.
            resized_normals = pending.result()
    return Predictions(depth=depth_image, class_ids=class_ids, normals=resized_normals)


def depth_to_image(depth: torch.Tensor, size, min_depth_m: float, max_depth_m: float):
    """Bilinear resize [1, 1, h, w] metres to H x W float32; NaN outside the valid range."""
    depth = _resize(depth[0, 0].float().cpu().numpy(), size, cv2.INTER_LINEAR)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth >= min_depth_m) & (depth <= max_depth_m)
    return np.where(valid, depth, np.float32(np.nan)).astype(np.float32, copy=False)


def class_ids_to_image(logits: torch.Tensor, size):
    """Take the argmax at network resolution, then nearest-resize to H x W uint8.

    Raises InvalidOutputError for NaN or Inf logits, because argmax would turn them into a
    plausible-looking class id.
    """
    # A sum is NaN or Inf whenever one element is (or when it overflows, far beyond any real
    # logit), and costs far less than an elementwise check of every logit.
    if not math.isfinite(float(logits[0].sum())):
        raise InvalidOutputError("the network returned NaN or Inf segmentation logits")

    # argmax over the leading class axis is slow on the CPU (strided reads), so keep a running
    # maximum instead: one contiguous pass per class. OpenCV's compare and bitwise operations
    # run this loop about 7 times faster than numpy's boolean indexing (0.7 ms against 5 ms
    # for 13 classes at 288x384 on one thread of a 2-core x86 CPU).
    scores = logits[0].float().cpu().numpy()
    best = scores[0].copy()
    ids = np.zeros(best.shape, dtype=np.uint8)
    for class_id in range(1, scores.shape[0]):
        better = cv2.compare(scores[class_id], best, cv2.CMP_GT)  # 255 where higher, else 0
        cv2.max(best, scores[class_id], dst=best)
        ids = cv2.bitwise_or(cv2.bitwise_and(ids, cv2.bitwise_not(better)),
                             cv2.bitwise_and(better, class_id))
    return _resize(ids, size, cv2.INTER_NEAREST_EXACT)


def normals_to_image(normals: torch.Tensor, size):
    """Bilinear resize [1, 3, h, w] to H x W x 3 float32 and renormalise (NaN if zero)."""
    normals = normals[0].float().permute(1, 2, 0).contiguous().cpu().numpy()
    normals = _resize(normals, size, cv2.INTER_LINEAR)
    # OpenCV's per-element operations take about half the time of numpy's einsum and
    # broadcasting here.
    squared_length = cv2.transform(cv2.multiply(normals, normals),
                                   np.ones((1, 3), dtype=np.float32))
    inverse_length = cv2.pow(squared_length, -0.5)
    normals = cv2.multiply(normals, cv2.merge([inverse_length] * 3))
    # Also true for NaN lengths.
    invalid = ~(squared_length > 1e-12)
    if invalid.any():
        normals[invalid] = np.nan
    return normals


def _resize(image: np.ndarray, size, interpolation: int) -> np.ndarray:
    # Measured on one thread of a 2-core x86 CPU, OpenCV resizes a 640x480 depth map in under
    # a millisecond, where torch's interpolate took tens. Both use half-pixel centres.
    height, width = size
    if image.shape[:2] == (height, width):
        return np.ascontiguousarray(image)
    return cv2.resize(image, (width, height), interpolation=interpolation)
