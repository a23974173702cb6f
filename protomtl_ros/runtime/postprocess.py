"""Turn network outputs at the network size into Predictions at the input image size."""

import numpy as np
import torch
import torch.nn.functional as F

from .errors import InvalidOutputError
from .predictions import Predictions


def postprocess(semseg_logits: torch.Tensor, depth: torch.Tensor, normals: torch.Tensor,
                output_size, min_depth_m: float, max_depth_m: float) -> Predictions:
    """Resize one frame's outputs (batch 1) to `output_size` (H, W) and mark invalid pixels."""
    height, width = (int(v) for v in output_size)
    return Predictions(
        depth=depth_to_image(depth[0:1], (height, width), min_depth_m, max_depth_m),
        class_ids=class_ids_to_image(semseg_logits[0:1], (height, width)),
        normals=normals_to_image(normals[0:1], (height, width)),
    )


def depth_to_image(depth: torch.Tensor, size, min_depth_m: float, max_depth_m: float):
    """Bilinear resize [1, 1, h, w] metres to H x W float32; NaN outside the valid range."""
    depth = _resize(depth.float(), size, "bilinear")[0, 0]
    valid = torch.isfinite(depth) & (depth >= min_depth_m) & (depth <= max_depth_m)
    depth = torch.where(valid, depth, torch.full_like(depth, float("nan")))
    return depth.cpu().numpy().astype(np.float32, copy=False)


def class_ids_to_image(logits: torch.Tensor, size):
    """Take the argmax at network resolution, then nearest-resize to H x W uint8.

    Raises InvalidOutputError for NaN or Inf logits, because argmax would turn them into a
    plausible-looking class id.
    """
    if not bool(torch.isfinite(logits).all()):
        raise InvalidOutputError("the network returned NaN or Inf segmentation logits")
    ids = logits.argmax(dim=1, keepdim=True).to(torch.float32)
    ids = _resize(ids, size, "nearest")[0, 0]
    return ids.to(torch.uint8).cpu().numpy()


def normals_to_image(normals: torch.Tensor, size):
    """Bilinear resize [1, 3, h, w] to H x W x 3 float32 and renormalise (NaN if zero)."""
    normals = _resize(normals.float(), size, "bilinear")[0]
    length = torch.linalg.vector_norm(normals, dim=0, keepdim=True)
    valid = torch.isfinite(length) & (length > 1e-6)
    unit = normals / torch.where(valid, length, torch.ones_like(length))
    unit = torch.where(valid, unit, torch.full_like(unit, float("nan")))
    return unit.permute(1, 2, 0).contiguous().cpu().numpy().astype(np.float32, copy=False)


def _resize(x: torch.Tensor, size, mode: str) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest-exact")
    return F.interpolate(x, size=size, mode=mode, align_corners=False)
