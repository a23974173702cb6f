"""Inference engine: RGB frame in, Predictions at the input resolution out."""

from concurrent.futures import Executor
import os
import time
from typing import Callable

import numpy as np
import torch

from ..network import InferenceGraph, ModelConfig
from .checkpoint import model_from_checkpoint
from .errors import InputError, ModelLoadError
from .metadata import build_metadata
from .postprocess import postprocess
from .predictions import Predictions
from .preprocess import preprocess

BACKENDS = ("auto", "tensorrt", "aoti", "exported", "eager")


def check_device(device) -> torch.device:
    """Return `device` as a torch.device; raise ModelLoadError if this machine lacks it."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ModelLoadError(f"device {device!r} is not a torch device name: {error}") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ModelLoadError(
                f"device {str(device)!r} was requested, but CUDA is not available here (torch "
                f"{torch.__version__}, built for CUDA {torch.version.cuda}); use device 'cpu' "
                "or install the NVIDIA driver and a CUDA build of torch"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {str(device)!r} was requested, but this machine has "
                f"{torch.cuda.device_count()} CUDA device(s); use cuda:0 to "
                f"cuda:{torch.cuda.device_count() - 1}"
            )
    return device


class InferenceEngine:
    """Run one deployable model on single frames; build it with from_file or from_model."""

    def __init__(self, runner: Callable, metadata: dict, backend: str, device="cpu"):
        self.runner = runner
        self.metadata = metadata
        self.backend = backend
        self.device = torch.device(device)
        self.input_size = tuple(int(v) for v in metadata["input_size"])
        self.class_names = list(metadata["class_names"])
        self.palette = [tuple(c) for c in metadata["palette"]]
        self.forward_ms = float("nan")

    @classmethod
    def from_model(cls, model: torch.nn.Module, config: ModelConfig, device="cpu"):
        """Wrap a network object in eager mode (tests, demos, evaluation)."""
        graph = InferenceGraph(model).to(device).eval()
        metadata = build_metadata(config, backend="eager", device=device)
        return cls(graph, metadata, "eager", device)

    @classmethod
    def from_file(cls, path, device="cpu", backend="auto", warn: Callable | None = None):
        """Load an artifact (.pt2 container) or a training checkpoint (eager backend)."""
        if backend not in BACKENDS:
            raise ModelLoadError(
                f"backend={backend!r} is invalid; accepted values: {', '.join(BACKENDS)}"
            )
        check_device(device)
        path = os.fspath(path)
        if os.path.isdir(path):
            raise ModelLoadError(
                f"model path {path!r} is a folder; pass the .pt2 file that "
                "training/export.py wrote, or a checkpoint such as best.pt"
            )
        if not os.path.isfile(path):
            raise ModelLoadError(
                f"model file not found: {path!r}; expected a .pt2 artifact from "
                "training/export.py or a training checkpoint"
            )

        from . import artifact
        if artifact.is_artifact(path):
            if backend == "eager":
                raise ModelLoadError(
                    f"{path!r} is an exported artifact, which has no eager form; use "
                    "backend 'auto' or load the training checkpoint for 'eager'"
                )
            runner, metadata, used = artifact.load(path, device, backend, warn)
            return cls(runner, metadata, used, device)

        if backend not in ("auto", "eager"):
            raise ModelLoadError(
                f"{path!r} is not an artifact, so backend {backend!r} is unavailable; export "
                "it with training/export.py, or use backend 'eager' for a checkpoint"
            )
        model, config = model_from_checkpoint(path, device)
        return cls.from_model(model, config, device)

    @property
    def min_depth_m(self) -> float:
        """Smallest valid depth in metres."""
        return float(self.metadata["min_depth_m"])

    @property
    def max_depth_m(self) -> float:
        """Largest valid depth in metres."""
        return float(self.metadata["max_depth_m"])

    def predict(self, rgb: np.ndarray, executor: Executor | None = None) -> Predictions:
        """Predict depth, classes and normals for one H x W x 3 uint8 RGB frame.

        An `executor` (a thread pool) lets post-processing use a second thread.
        """
        x = preprocess(rgb, self.input_size, self.metadata["mean"], self.metadata["std"],
                       self.device)
        outputs = self.forward(x)
        return postprocess(*outputs, rgb.shape[:2], self.min_depth_m, self.max_depth_m,
                           executor=executor)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the model on a normalised batch; store its time in forward_ms."""
        if tuple(x.shape[-2:]) != self.input_size:
            raise InputError(
                f"network input must be [B, 3, {self.input_size[0]}, {self.input_size[1]}], "
                f"got {list(x.shape)}; use predict() to resize frames of any size"
            )

        start = time.perf_counter()
        with torch.inference_mode():
            outputs = self.runner(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.forward_ms = (time.perf_counter() - start) * 1000.0
        return tuple(outputs)
