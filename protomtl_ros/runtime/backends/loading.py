"""Loaders for the compiled members of an artifact (AOTInductor package, TensorRT program).

Each loader first checks that this machine can run the member (device, CPU architecture,
GPU, library versions) and raises ModelLoadError with the reason when it cannot, or when
loading fails. artifact.load then warns once with that reason and falls back to the
portable program stored in the same file.
"""

import os

import torch

from ..container import BACKEND_MEMBERS, read_member
from ..errors import InputError, ModelLoadError
from .aoti import aoti_incompatibility, load_aoti
from .tensorrt import BackendUnavailableError, load_tensorrt, tensorrt_incompatibility

COMPILED_BACKENDS = ("aoti", "tensorrt")

_INCOMPATIBILITY = {"aoti": aoti_incompatibility, "tensorrt": tensorrt_incompatibility}
_LOADERS = {"aoti": load_aoti, "tensorrt": load_tensorrt}


class CompiledRunner:
    """Calls a compiled program after checking that the input has the compiled shape.

    A compiled program is specialised to one input shape, and an AOTInductor package reads
    an input of another size without raising, so the check cannot be left to the program.
    """

    def __init__(self, program, input_shape, device: torch.device):
        self.program = program
        self.input_shape = tuple(int(size) for size in input_shape)
        self.device = device

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if tuple(image.shape) != self.input_shape:
            raise InputError(
                f"the compiled program takes input of shape {list(self.input_shape)}, got "
                f"{list(image.shape)}; InferenceEngine.predict resizes frames to this size"
            )

        outputs = self.program(image.to(self.device, torch.float32).contiguous())
        # A TensorRT program built with autocast may return float16 tensors.
        return tuple(output.float() for output in outputs)


def member_description(metadata: dict, backend: str) -> dict:
    """Return the compile description of one compiled member, with the export's versions."""
    description = dict(metadata.get("members", {}).get(backend) or {})
    description.setdefault("versions", metadata.get("versions", {}))
    return description


def member_incompatibility(metadata: dict, backend: str, device: torch.device) -> str | None:
    """Return why the `backend` member described in `metadata` cannot run on `device`."""
    description = member_description(metadata, backend)
    if not description:
        return f"metadata.json does not describe the {backend} member"

    input_shape = description.get("input_shape")
    input_size = metadata.get("input_size")
    if not input_shape or list(input_shape[-2:]) != list(input_size or []):
        return (
            f"the {backend} input shape {input_shape} does not match input_size {input_size}; "
            "export the artifact again"
        )

    return _INCOMPATIBILITY[backend](description, device)


def load_member(backend: str, path, metadata: dict, device) -> CompiledRunner:
    """Load one compiled member of the artifact at `path` for `device`."""
    path = os.fspath(path)
    device = torch.device(device)

    reason = member_incompatibility(metadata, backend, device)
    if reason is not None:
        raise ModelLoadError(f"{path!r}: the {backend} program cannot run here: {reason}")

    data = read_member(path, BACKEND_MEMBERS[backend])
    try:
        program = _LOADERS[backend](data, device)
    except BackendUnavailableError as error:
        raise ModelLoadError(
            f"{path!r}: the {backend} program cannot run here: {error}"
        ) from error
    except Exception as error:  # noqa: BLE001 - any load failure falls back to the portable one
        raise ModelLoadError(
            f"{path!r}: loading the {backend} program failed: {type(error).__name__}: {error}"
        ) from error

    input_shape = member_description(metadata, backend)["input_shape"]
    return CompiledRunner(program, input_shape, device)


def load_aoti_member(path, metadata: dict, device) -> CompiledRunner:
    """Load the AOTInductor package of an artifact (artifact.LOADERS signature)."""
    return load_member("aoti", path, metadata, device)


def load_tensorrt_member(path, metadata: dict, device) -> CompiledRunner:
    """Load the Torch-TensorRT program of an artifact (artifact.LOADERS signature)."""
    return load_member("tensorrt", path, metadata, device)
