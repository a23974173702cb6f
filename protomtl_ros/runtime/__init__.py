"""Pre- and post-processing, model files and the inference engine (no ROS imports)."""

from .checkpoint import model_from_checkpoint, read_checkpoint, write_checkpoint
from .engine import BACKENDS, InferenceEngine
from .errors import InputError, InvalidOutputError, ModelLoadError, ProtoMTLError
from .postprocess import postprocess
from .predictions import Predictions, normals_to_color, segmentation_to_color
from .preprocess import IMAGENET_MEAN, IMAGENET_STD, preprocess

__all__ = [
    "BACKENDS", "IMAGENET_MEAN", "IMAGENET_STD", "InferenceEngine", "InputError",
    "ModelLoadError", "Predictions", "ProtoMTLError", "model_from_checkpoint",
    "normals_to_color", "postprocess", "preprocess", "read_checkpoint",
    "segmentation_to_color", "write_checkpoint",
]
