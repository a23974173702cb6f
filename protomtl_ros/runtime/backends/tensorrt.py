"""Torch-TensorRT: compile the network for one NVIDIA GPU, save it, and load it back.

TensorRT cannot be installed on every development machine, so this module imports
torch_tensorrt only inside its functions. The precision options differ between
Torch-TensorRT releases; `precision_settings` picks them by the installed version.
"""

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from ..errors import ProtoMTLError
from ..metadata import library_versions
from .environment import gpu_description

PRECISIONS = ("fp32", "fp16")


class BackendUnavailableError(ProtoMTLError):
    """A compiled backend cannot be used on this machine; the message names what is missing."""


def import_torch_tensorrt(device: torch.device):
    """Import torch_tensorrt for a CUDA device, raising BackendUnavailableError with the reason."""
    if device.type != "cuda":
        raise BackendUnavailableError(
            f"TensorRT needs a CUDA device, but the device is {device}: select a CUDA device"
        )

    if not torch.cuda.is_available():
        raise BackendUnavailableError(
            "CUDA is not available: TensorRT needs an NVIDIA GPU with a working driver and a "
            "CUDA build of torch"
        )

    try:
        import torch_tensorrt
    except ImportError as error:
        raise BackendUnavailableError(
            f"torch_tensorrt is not installed ({error}): install the torch_tensorrt release "
            "that matches this torch, or use --backend aoti"
        ) from error

    return torch_tensorrt


def release_tuple(version: str) -> tuple[int, ...]:
    """Return the release numbers of a version string: "2.8.0+cu126" -> (2, 8, 0)."""
    from packaging.version import Version

    return Version(version).release


def precision_settings(torch_tensorrt_version: str, precision: str) -> tuple[str, dict]:
    """Return (strategy, keyword arguments for torch_tensorrt.dynamo.compile).

    strategy is "fp32", "weak_typing", "half_model" or "autocast"; "half_model" means the
    caller casts the model and its input to float16 before export.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is invalid: use one of {PRECISIONS}")

    version = release_tuple(torch_tensorrt_version)

    # Written against Torch-TensorRT 2.8, the release for JetPack 6 on Jetson Orin. Until 2.9
    # use_explicit_typing defaults to False, so TensorRT chooses each layer's precision from
    # enabled_precisions ("weak typing").
    if version < (2, 10):
        if precision == "fp32":
            return "fp32", {"enabled_precisions": {torch.float32}, "disable_tf32": True}

        return "weak_typing", {"enabled_precisions": {torch.float16}}

    # From 2.10 use_explicit_typing defaults to True and compile() raises when
    # enabled_precisions names float16, so the layer types come from the graph itself.
    if precision == "fp32":
        return "fp32", {"use_explicit_typing": True, "disable_tf32": True}

    # Written against 2.10-2.12: the model and its input are cast to float16 before export.
    if version < (2, 13):
        return "half_model", {"use_explicit_typing": True}

    # Written against 2.13: rule-based autocast inserts the casts and keeps reductions and
    # other precision-sensitive layers in float32.
    return "autocast", {
        "use_explicit_typing": True,
        "enable_autocast": True,
        "low_precision_type": torch.float16,
    }


class HalfPrecisionGraph(nn.Module):
    """Runs a float16 copy of a network on float32 inputs and returns float32 outputs."""

    def __init__(self, graph: nn.Module):
        super().__init__()
        self.graph = graph.half()

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.graph(image.half())
        return tuple(output.float() for output in outputs)


def compile_tensorrt(
    graph: nn.Module, example: torch.Tensor, precision: str, device: torch.device
) -> bytes:
    """Compile the inference graph with Torch-TensorRT and return the saved program bytes.

    The saved program takes a float32 image of `example`'s shape and returns float32
    outputs at every precision, so loading code does not depend on the precision.
    """
    torch_tensorrt = import_torch_tensorrt(device)
    version = str(torch_tensorrt.__version__)
    strategy, settings = precision_settings(version, precision)

    graph = graph.to(device).eval()
    example = example.to(device=device, dtype=torch.float32)
    if strategy == "half_model":
        graph = HalfPrecisionGraph(graph).eval()

    with torch.no_grad():
        program = torch.export.export(graph, (example,))
        compiled = torch_tensorrt.dynamo.compile(
            program, arg_inputs=[example], device=device, **settings
        )

    with tempfile.TemporaryDirectory(prefix="protomtl_trt_") as folder:
        program_path = Path(folder) / "model.ep"
        # The 2.8 documentation passes the example to torch_tensorrt.save as `inputs`, later
        # releases as `arg_inputs`.
        if release_tuple(version) < (2, 10):
            example_argument = {"inputs": [example]}
        else:
            example_argument = {"arg_inputs": [example]}

        torch_tensorrt.save(
            compiled, str(program_path), output_format="exported_program", **example_argument
        )
        return program_path.read_bytes()


def load_tensorrt(program: bytes, device: torch.device) -> Callable:
    """Load a saved Torch-TensorRT program and return the callable module.

    torch_tensorrt must be imported before torch.export.load, because importing it
    registers the TensorRT engine operator the saved graph calls.
    """
    import_torch_tensorrt(device)

    folder = tempfile.mkdtemp(prefix="protomtl_trt_")
    try:
        program_path = Path(folder) / "model.ep"
        program_path.write_bytes(program)
        return torch.export.load(str(program_path)).module()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def tensorrt_incompatibility(metadata: dict, device: torch.device) -> str | None:
    """Return why the TensorRT program described by `metadata` cannot run on `device`.

    `metadata` is the member's entry in the artifact metadata (gpu_name and versions at
    build time). Returns None when it can run.
    """
    try:
        import_torch_tensorrt(device)
    except BackendUnavailableError as error:
        return str(error)

    compiled = metadata.get("versions", {})
    installed = library_versions()
    for library in ("torch", "torch_tensorrt"):
        if compiled.get(library) != installed[library]:
            return (
                f"the TensorRT program was built with {library} {compiled.get(library)} and "
                f"this machine has {installed[library]}"
            )

    # A TensorRT engine is built for one GPU model unless built hardware-compatible.
    gpu_name, _ = gpu_description(device)
    if metadata.get("gpu_name") != gpu_name:
        return (
            f"the TensorRT program was built on {metadata.get('gpu_name')} and {device} is "
            f"{gpu_name}"
        )

    return None
