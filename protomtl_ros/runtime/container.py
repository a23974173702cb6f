"""The .pt2 artifact container: a zip of metadata.json and one member per backend.

Members (all stored uncompressed):
- metadata.json   model description (see metadata.py), always present;
- exported.pt2    portable torch.export program (torch.export.save bytes), always present;
- aoti.pt2        optional AOTInductor package compiled for one device and input shape;
- tensorrt.ep     optional Torch-TensorRT program.
"""

import io
import json
import os
import tempfile
import zipfile

from .errors import ModelLoadError

METADATA_MEMBER = "metadata.json"
BACKEND_MEMBERS = {
    "tensorrt": "tensorrt.ep",
    "aoti": "aoti.pt2",
    "exported": "exported.pt2",
}
REQUIRED_METADATA_KEYS = (
    "format_version", "tasks", "class_names", "palette", "input_size", "mean", "std",
    "min_depth_m", "max_depth_m", "backend",
)
EXPECTED = (
    "expected a protomtl_ros artifact (.pt2 zip container with metadata.json and "
    "exported.pt2, written by training/export.py)"
)


def write_container(path, metadata: dict, members: dict[str, bytes]) -> None:
    """Write metadata and backend members to `path` atomically (temporary file + rename)."""
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(suffix=".pt2.tmp", dir=directory)
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(METADATA_MEMBER, json.dumps(metadata, indent=2, sort_keys=True))
            for name, data in members.items():
                archive.writestr(name, data)
        # mkstemp makes the file readable by its owner only. Give it the mode of any new file
        # under the current umask, so that other accounts (a robot's service user) can read it.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def is_container(path) -> bool:
    """Return True when `path` is a zip file with a metadata.json member."""
    try:
        with zipfile.ZipFile(path) as archive:
            return METADATA_MEMBER in archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False


def list_members(path) -> list[str]:
    """Return the member names of the container at `path`."""
    with _open(path) as archive:
        return archive.namelist()


def read_member(path, name: str) -> bytes:
    """Return the bytes of one member; ModelLoadError when it is missing or corrupt."""
    with _open(path) as archive:
        if name not in archive.namelist():
            raise ModelLoadError(f"{os.fspath(path)!r} has no member {name!r}; {EXPECTED}")
        try:
            return archive.read(name)
        except (zipfile.BadZipFile, OSError, EOFError) as error:
            raise ModelLoadError(
                f"{os.fspath(path)!r}: member {name!r} is corrupt or truncated: {error}"
            ) from error


def read_metadata(path) -> dict:
    """Read and check metadata.json of an artifact."""
    raw = read_member(path, METADATA_MEMBER)
    try:
        metadata = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelLoadError(f"{os.fspath(path)!r}: metadata.json is not valid JSON: {error}")

    missing = [key for key in REQUIRED_METADATA_KEYS if key not in metadata] if isinstance(
        metadata, dict) else list(REQUIRED_METADATA_KEYS)
    if missing:
        raise ModelLoadError(f"{os.fspath(path)!r}: metadata.json lacks keys {missing}")
    return metadata


def _open(path) -> zipfile.ZipFile:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ModelLoadError(f"model file not found: {path!r}; {EXPECTED}")
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ModelLoadError(
            f"{path!r} is not a zip container (truncated or another kind of file); "
            f"{EXPECTED}"
        ) from error


def open_bytes_as_zip(data: bytes) -> zipfile.ZipFile:
    """Open in-memory zip bytes (used to inspect nested torch.export archives)."""
    return zipfile.ZipFile(io.BytesIO(data))
