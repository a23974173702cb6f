"""Compiled backends: AOTInductor packages and Torch-TensorRT programs inside an artifact."""

from .aoti import aoti_incompatibility, compile_aoti, load_aoti
from .environment import compile_target, gpu_description, parse_device, torch_tensorrt_version
from .loading import (
    COMPILED_BACKENDS, CompiledRunner, load_aoti_member, load_member, load_tensorrt_member,
    member_incompatibility,
)
from .tensorrt import (
    PRECISIONS, BackendUnavailableError, compile_tensorrt, import_torch_tensorrt, load_tensorrt,
    precision_settings, tensorrt_incompatibility,
)

__all__ = [
    "COMPILED_BACKENDS", "PRECISIONS", "BackendUnavailableError", "CompiledRunner",
    "aoti_incompatibility", "compile_aoti", "compile_target", "compile_tensorrt",
    "gpu_description", "import_torch_tensorrt", "load_aoti", "load_aoti_member", "load_member",
    "load_tensorrt", "load_tensorrt_member", "member_incompatibility", "parse_device",
    "precision_settings", "tensorrt_incompatibility", "torch_tensorrt_version",
]
