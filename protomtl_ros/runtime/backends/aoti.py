"""AOTInductor: compile an exported program to a native package, and load one back.

An AOTInductor package contains a shared library built for one device type (CPU or CUDA), one
CPU architecture and, for CUDA, the compute capability of the GPU it was compiled on. It is
tied to the torch version that built it. The checks in `aoti_incompatibility` reject a
package that cannot run here, so that the caller can fall back to the portable program.
"""

import platform
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from .environment import cpu_vector_isas, gpu_description


def compile_aoti(program: torch.export.ExportedProgram) -> bytes:
    """Compile an exported program with AOTInductor and return the package bytes.

    The package targets the device the program's parameters live on, so export the model on
    the CPU for a CPU package and on a CUDA device for a CUDA package.
    """
    with tempfile.TemporaryDirectory(prefix="protomtl_aoti_") as folder:
        package_path = Path(folder) / "model.pt2"
        torch._inductor.aoti_compile_and_package(program, package_path=str(package_path))
        return package_path.read_bytes()


def load_aoti(package: bytes, device: torch.device) -> Callable:
    """Load AOTInductor package bytes and return the compiled callable.

    aoti_load_package reads from a real file, so the bytes go to a private temporary
    folder that is removed once the shared library has been loaded.
    """
    device_index = -1
    if device.type == "cuda":
        device_index = device.index if device.index is not None else torch.cuda.current_device()

    folder = tempfile.mkdtemp(prefix="protomtl_aoti_")
    try:
        package_path = Path(folder) / "model.pt2"
        package_path.write_bytes(package)
        return torch._inductor.aoti_load_package(str(package_path), device_index=device_index)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def aoti_incompatibility(description: dict, device: torch.device) -> str | None:
    """Return why the AOTInductor package described by `description` cannot run on `device`.

    `description` is the member's entry in the artifact metadata: device, machine,
    cuda_capability, gpu_name and versions at compile time. Returns None when it can run.
    """
    compiled_device = description.get("device")
    if compiled_device != device.type:
        return (
            f"the AOTInductor package was compiled for {compiled_device!r} but the requested "
            f"device is {device.type!r}"
        )

    machine = description.get("machine")
    if machine != platform.machine():
        return (
            f"the AOTInductor package was compiled on a {machine} CPU and this machine is "
            f"{platform.machine()}"
        )

    compiled_torch = description.get("versions", {}).get("torch")
    if compiled_torch != torch.__version__:
        return (
            f"the AOTInductor package was compiled with torch {compiled_torch} and this "
            f"machine has torch {torch.__version__}"
        )

    vector_isa = description.get("cpu_vector_isa")
    if device.type == "cpu" and vector_isa and vector_isa not in cpu_vector_isas():
        return (
            f"the AOTInductor package uses {vector_isa} instructions, which this CPU lacks "
            f"(it has {cpu_vector_isas() or 'none Inductor uses'})"
        )

    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "the AOTInductor package needs CUDA, which is not available here"

        _, capability = gpu_description(device)
        if description.get("cuda_capability") != capability:
            compiled_gpu = f"{description.get('cuda_capability')} ({description.get('gpu_name')})"
            return (
                f"the AOTInductor package was compiled for a GPU of compute capability "
                f"{compiled_gpu} and {device} has {capability}"
            )

    return None
