"""Metadata that describes a deployable model: tasks, classes, input size, ranges, versions."""

import datetime

import torch
import torchvision

from ..network import ModelConfig
from ..network.tasks import NYU13_CLASSES, NYU13_PALETTE, TASKS
from .preprocess import IMAGENET_MEAN, IMAGENET_STD

METADATA_FORMAT_VERSION = 1


def build_metadata(config: ModelConfig, backend: str, precision: str = "fp32",
                   input_shape=None, dynamic_batch: bool = False, device=None) -> dict:
    """Describe a model built from `config`; every value is JSON-serialisable."""
    height, width = config.input_height, config.input_width
    class_names, palette = class_names_and_palette(config.num_classes)
    return {
        "format_version": METADATA_FORMAT_VERSION,
        "tasks": list(TASKS),
        "class_names": class_names,
        "palette": palette,
        "input_size": [height, width],
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "min_depth_m": config.min_depth_m,
        "max_depth_m": config.max_depth_m,
        "model_size": config.size,
        "model_variant": config.variant,
        "model_config": config.to_dict(),
        "backend": backend,
        "precision": precision,
        "compiled_input_shape": list(input_shape or (1, 3, height, width)),
        "dynamic_batch": dynamic_batch,
        "versions": library_versions(),
        "gpu_name": gpu_name(device),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def class_names_and_palette(num_classes: int) -> tuple[list[str], list[list[int]]]:
    """Return the NYUv2 13-class names and colours, or generic ones for other class counts."""
    if num_classes == len(NYU13_CLASSES):
        return list(NYU13_CLASSES), [list(c) for c in NYU13_PALETTE]

    names = [f"class_{i}" for i in range(num_classes)]
    # Spread hues with the golden ratio so neighbouring ids get distinct colours.
    palette = []
    for i in range(num_classes):
        hue = (i * 0.618033988749895) % 1.0
        palette.append([int(255 * _hue_channel(hue + shift)) for shift in (0.0, 2 / 3, 1 / 3)])
    return names, palette


def _hue_channel(hue: float) -> float:
    hue = hue % 1.0
    return min(max(abs(hue * 6.0 - 3.0) - 1.0, 0.0), 1.0)


def library_versions() -> dict:
    """Return the versions of torch, torchvision and torch_tensorrt (None if absent)."""
    try:
        import torch_tensorrt
        tensorrt_version = torch_tensorrt.__version__
    except ImportError:
        tensorrt_version = None
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "torch_tensorrt": tensorrt_version,
    }


def gpu_name(device) -> str | None:
    """Return the CUDA device name for a CUDA `device`, else None."""
    if device is None or torch.device(device).type != "cuda":
        return None
    return torch.cuda.get_device_name(torch.device(device))
