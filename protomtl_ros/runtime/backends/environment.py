"""Description of the machine a program is compiled on or loaded on."""

import platform

import torch


def torch_tensorrt_version() -> str | None:
    """Return the installed torch_tensorrt version, or None when it cannot be imported."""
    try:
        import torch_tensorrt
    except ImportError:
        return None

    return str(torch_tensorrt.__version__)


def gpu_description(device: torch.device) -> tuple[str | None, list[int] | None]:
    """Return (GPU name, [major, minor] compute capability) of a CUDA device, else (None, None)."""
    if device.type != "cuda" or not torch.cuda.is_available():
        return None, None

    index = device.index if device.index is not None else torch.cuda.current_device()
    major, minor = torch.cuda.get_device_capability(index)
    return torch.cuda.get_device_name(index), [major, minor]


def cpu_vector_isas() -> list[str]:
    """Return the SIMD instruction sets Inductor can use on this CPU, best first ("avx512"...).

    Inductor builds CPU kernels for the best of these, and a package built for an ISA the CPU
    lacks stops the process with an illegal instruction instead of raising.
    """
    try:
        from torch._inductor import cpu_vec_isa
    except ImportError:
        return []

    return [str(isa) for isa in cpu_vec_isa.valid_vec_isa_list()]


def compile_target(device: torch.device) -> dict:
    """Return the metadata entries naming the device, CPU architecture and GPU compiled for."""
    gpu_name, capability = gpu_description(device)
    return {
        "device": device.type,
        "machine": platform.machine(),
        "gpu_name": gpu_name,
        "cuda_capability": capability,
        # Inductor's choice for CPU kernels; None when compiled for a GPU.
        "cpu_vector_isa": cpu_vector_isa() if device.type == "cpu" else None,
    }


def cpu_vector_isa() -> str | None:
    """Return the SIMD instruction set Inductor compiles CPU kernels for on this machine."""
    try:
        from torch._inductor import cpu_vec_isa
    except ImportError:
        return None

    isa = cpu_vec_isa.pick_vec_isa()
    return str(isa) if isa else None


def parse_device(device: str | torch.device) -> torch.device:
    """Parse a device string, rejecting anything other than cpu and cuda[:N]."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device={device!r} is invalid: use 'cpu', 'cuda' or 'cuda:N'") from error

    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported: use 'cpu', 'cuda' or 'cuda:N'")

    return parsed
