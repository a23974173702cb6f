"""Export the inference graph to a .pt2 artifact and load it back without unpickling."""

import io
import json
import os
import zipfile
from typing import Callable

import torch
from torch.export.passes import move_to_device_pass

from ..network import InferenceGraph, ModelConfig
from .backends import load_aoti_member, load_tensorrt_member
from .container import (
    BACKEND_MEMBERS, EXPECTED, is_container, list_members, open_bytes_as_zip, read_member,
    read_metadata, write_container,
)
from .errors import ModelLoadError
from .metadata import build_metadata

# Largest batch the portable program accepts; the batch dimension is symbolic up to this.
MAX_BATCH = 64

# Order in which backend "auto" tries the members an artifact contains.
AUTO_ORDER = ("tensorrt", "aoti", "exported")

__all__ = [
    "AUTO_ORDER", "BACKEND_MEMBERS", "LOADERS", "export_program", "is_artifact", "load",
    "read_member", "read_metadata", "save_artifact", "serialize_program", "write_container",
]


def is_artifact(path) -> bool:
    """Return True when `path` looks like an artifact (.pt2 name or metadata.json inside)."""
    return os.fspath(path).endswith(".pt2") or is_container(path)


def export_program(model: torch.nn.Module, config: ModelConfig, dynamic_batch: bool = True):
    """Export the eval-mode inference graph at the network input size on the CPU.

    Returns (ExportedProgram, dynamic_batch). dynamic_batch is True when the batch dimension
    stayed symbolic (1..MAX_BATCH) and False when it was fixed to 1.
    """
    graph = InferenceGraph(model).to("cpu").eval()
    height, width = config.input_height, config.input_width

    if dynamic_batch:
        # Batch 2 as the example input keeps export from specialising the batch to 1.
        example = torch.zeros(2, 3, height, width)
        batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
        with torch.no_grad():
            program = torch.export.export(graph, (example,), dynamic_shapes=({0: batch},))
        return program, True

    with torch.no_grad():
        program = torch.export.export(graph, (torch.zeros(1, 3, height, width),))
    return program, False


def serialize_program(program) -> bytes:
    """Return the torch.export.save bytes of an ExportedProgram."""
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    return buffer.getvalue()


def save_artifact(path, model: torch.nn.Module, config: ModelConfig,
                  dynamic_batch: bool = True, extra_members: dict[str, bytes] | None = None,
                  metadata_updates: dict | None = None) -> dict:
    """Export `model` and write the artifact container; return its metadata.

    extra_members maps member names (e.g. "aoti.pt2") to bytes; metadata_updates are merged
    into the metadata, e.g. to describe those members.
    """
    program, dynamic = export_program(model, config, dynamic_batch)
    height, width = config.input_height, config.input_width
    metadata = build_metadata(
        config, backend="exported", precision="fp32", input_shape=(1, 3, height, width),
        dynamic_batch=dynamic,
    )
    metadata["members"] = {
        "exported": {
            "member": BACKEND_MEMBERS["exported"], "precision": "fp32", "device": "cpu",
            "input_shape": [1, 3, height, width], "dynamic_batch": dynamic,
            "max_batch": MAX_BATCH if dynamic else 1,
        }
    }
    updates = dict(metadata_updates or {})
    # A "members" update describes extra members; it adds to the entry of the portable one.
    metadata["members"].update(updates.pop("members", {}))
    metadata.update(updates)

    members = {BACKEND_MEMBERS["exported"]: serialize_program(program)}
    members.update(extra_members or {})
    write_container(path, metadata, members)
    return metadata


def check_program_archive(data: bytes, source: str) -> None:
    """Reject a torch.export archive whose loading would unpickle objects.

    torch.export.load unpickles tensor subclasses, custom and opaque objects and legacy
    weight files, and falls back to full unpickling for sample inputs that fail a
    weights_only load. Plain-tensor programs use none of these, so any of them is rejected.
    """
    try:
        archive = open_bytes_as_zip(data)
        names = archive.namelist()
        for name in names:
            inner = name.split("/", 1)[-1]
            if inner.startswith(("data/weights/", "data/constants/")) and inner.endswith(".pt"):
                raise ModelLoadError(f"{source}: legacy pickled payload {name!r} is rejected")
            if inner.endswith(("_weights_config.json", "_constants_config.json")):
                _check_payload_config(json.loads(archive.read(name)), name, source)
            if inner.startswith("data/sample_inputs/") and archive.getinfo(name).file_size:
                torch.load(io.BytesIO(archive.read(name)), weights_only=True)
    except ModelLoadError:
        raise
    except Exception as error:  # noqa: BLE001 - any parse failure means an unusable program
        raise ModelLoadError(f"{source} is not a valid torch.export program: {error}") from error


def _check_payload_config(config: dict, name: str, source: str) -> None:
    for key, entry in config.get("config", {}).items():
        path_name = entry.get("path_name", "")
        if entry.get("use_pickle") or not path_name.startswith(("weight_", "tensor_")):
            raise ModelLoadError(
                f"{source}: entry {key!r} in {name!r} would be unpickled ({path_name!r}); "
                "only plain tensors are accepted"
            )


def load_exported(path, metadata: dict, device) -> Callable:
    """Load the portable program of an artifact and return a callable on `device`."""
    source = f"{os.fspath(path)!r} member {BACKEND_MEMBERS['exported']!r}"
    data = read_member(path, BACKEND_MEMBERS["exported"])
    check_program_archive(data, source)
    try:
        program = torch.export.load(io.BytesIO(data))
    except Exception as error:  # noqa: BLE001 - torch raises many types for bad archives
        raise ModelLoadError(f"{source} failed to load: {error}") from error

    if torch.device(device).type != "cpu":
        program = move_to_device_pass(program, torch.device(device))
    return program.module()


# Loader per backend member: (path, metadata, device) -> callable returning the output tuple.
# The compiled loaders raise ModelLoadError with the reason when this machine cannot run them.
LOADERS: dict[str, Callable] = {
    "tensorrt": load_tensorrt_member,
    "aoti": load_aoti_member,
    "exported": load_exported,
}


def load(path, device="cpu", backend: str = "auto", warn: Callable | None = None):
    """Load an artifact; return (runner, metadata, backend in use).

    Backend "auto" tries the compiled members first (AUTO_ORDER) and falls back, calling
    `warn` with the reason, when one is missing a loader or fails to load.
    """
    path = os.fspath(path)
    metadata = read_metadata(path)
    try:
        present = set(list_members(path))
    except zipfile.BadZipFile as error:
        raise ModelLoadError(f"{path!r} is corrupt: {error}; {EXPECTED}") from error

    if backend != "auto":
        if BACKEND_MEMBERS.get(backend) not in present:
            raise ModelLoadError(
                f"{path!r} has no {backend!r} program (members: {sorted(present)}); "
                "export it for that backend or use backend 'auto'"
            )
        if backend not in LOADERS:
            raise ModelLoadError(f"backend {backend!r} is not supported by this runtime")
        return LOADERS[backend](path, metadata, device), metadata, backend

    for candidate in AUTO_ORDER:
        if BACKEND_MEMBERS[candidate] not in present:
            continue
        if candidate not in LOADERS:
            _warn(warn, f"{path!r}: skipping the {candidate!r} program: no loader available")
            continue
        try:
            return LOADERS[candidate](path, metadata, device), metadata, candidate
        except ModelLoadError as error:
            if candidate == AUTO_ORDER[-1]:
                raise
            _warn(warn, f"{path!r}: the {candidate!r} program failed to load, falling back: "
                  f"{error}")

    raise ModelLoadError(f"{path!r} contains no loadable program; {EXPECTED}")


def _warn(warn: Callable | None, message: str) -> None:
    if warn is not None:
        warn(message)
