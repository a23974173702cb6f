"""The multi-task network (torch and torchvision only)."""

from .config import ModelConfig
from .model import InferenceGraph, MultiTaskNet, ProtoMTLNet, build_model, count_parameters
from .tasks import IGNORE_INDEX, NYU13_CLASSES, NYU13_PALETTE, TASKS

__all__ = [
    "IGNORE_INDEX", "InferenceGraph", "ModelConfig", "MultiTaskNet", "NYU13_CLASSES",
    "NYU13_PALETTE", "ProtoMTLNet", "TASKS", "build_model", "count_parameters",
]
