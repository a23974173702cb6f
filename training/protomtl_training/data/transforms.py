"""Resizing, augmentation and normalisation of multi-task samples.

A raw sample is a dict of torch tensors: "image" float [3,H,W] in [0,1], "semseg" int64
[H,W] (255 void), "depth" float [1,H,W] metres (0 invalid), "normals" float [3,H,W]
(all-zero invalid). Geometric conventions:
- zooming the image by a factor s divides depth by s (the scene looks s times closer);
- a horizontal flip negates the x component of the normals (optical frame, x right);
- labels, depth and normals are resized with nearest neighbour, so no value is blended
  across an object boundary or a depth hole.
"""

import torch
import torch.nn.functional as F

from protomtl_ros.network.tasks import IGNORE_INDEX

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_sample(sample: dict, height: int, width: int) -> dict:
    """Resize image (bilinear) and targets (nearest) to height x width."""
    if tuple(sample["image"].shape[-2:]) == (height, width):
        return dict(sample)
    out = dict(sample)
    out["image"] = F.interpolate(sample["image"][None], size=(height, width), mode="bilinear",
                                 align_corners=False, antialias=True)[0].clamp(0.0, 1.0)
    out["semseg"] = _nearest(sample["semseg"][None].float(), height, width)[0].long()
    out["depth"] = _nearest(sample["depth"], height, width)
    out["normals"] = _nearest(sample["normals"], height, width)
    return out


def random_scale_crop(sample: dict, scale: float, top_fraction: float,
                      left_fraction: float) -> dict:
    """Zoom by scale >= 1 and crop back to the input size; depth is divided by scale."""
    height, width = sample["image"].shape[-2:]
    if scale == 1.0:
        return dict(sample)
    big_h, big_w = int(round(height * scale)), int(round(width * scale))
    zoomed = resize_sample(sample, big_h, big_w)
    top = int(round(top_fraction * (big_h - height)))
    left = int(round(left_fraction * (big_w - width)))

    out = {}
    for key in ("image", "semseg", "depth", "normals"):
        out[key] = zoomed[key][..., top:top + height, left:left + width]
    # Zooming in by s makes the scene look s times closer to the camera.
    out["depth"] = out["depth"] / scale
    return {**sample, **out}


def horizontal_flip(sample: dict) -> dict:
    """Mirror left-right; the normal's x axis points right, so its sign flips."""
    out = dict(sample)
    for key in ("image", "semseg", "depth", "normals"):
        out[key] = sample[key].flip(-1)
    out["normals"] = out["normals"] * torch.tensor([-1.0, 1.0, 1.0]).view(3, 1, 1)
    return out


def augment(sample: dict, generator: torch.Generator, scale_min: float, scale_max: float,
            flip: bool) -> dict:
    """Apply a random zoom-and-crop and an optional random horizontal flip."""
    draws = torch.rand(4, generator=generator).tolist()
    scale = scale_min + (scale_max - scale_min) * draws[0]
    if scale > 1.0:
        sample = random_scale_crop(sample, scale, draws[1], draws[2])
    if flip and draws[3] < 0.5:
        sample = horizontal_flip(sample)
    return sample


def normalise_image(image: torch.Tensor) -> torch.Tensor:
    """Map an RGB image in [0,1] to the ImageNet-normalised network input."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype).view(3, 1, 1)
    return (image - mean) / std


def denormalise_image(image: torch.Tensor) -> torch.Tensor:
    """Invert normalise_image (for panels), clamped to [0,1]."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=image.dtype, device=image.device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * std + mean).clamp(0.0, 1.0)


def valid_masks(sample: dict) -> dict:
    """Return the per-task bool masks of usable target pixels."""
    depth = sample["depth"][0]
    return {
        "semseg": sample["semseg"] != IGNORE_INDEX,
        "depth": torch.isfinite(depth) & (depth > 0),
        "normals": sample["normals"].abs().sum(0) > 0.5,
    }


def apply_valid(sample: dict, valid: dict) -> dict:
    """Write void / 0 / all-zero into every target pixel that a mask marks invalid."""
    out = dict(sample)
    out["semseg"] = torch.where(valid["semseg"], sample["semseg"],
                                torch.full_like(sample["semseg"], IGNORE_INDEX))
    depth = torch.nan_to_num(sample["depth"], nan=0.0, posinf=0.0, neginf=0.0)
    out["depth"] = torch.where(valid["depth"][None], depth, torch.zeros_like(depth))
    normals = torch.nan_to_num(sample["normals"], nan=0.0, posinf=0.0, neginf=0.0)
    out["normals"] = torch.where(valid["normals"][None], normals, torch.zeros_like(normals))
    return out


def _nearest(tensor: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(tensor[None], size=(height, width), mode="nearest-exact")[0]
