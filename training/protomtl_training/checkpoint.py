"""Training checkpoints: atomic writes, weights_only-loadable content, RNG state capture.

A checkpoint is a torch.save dict with "format_version", "model_config" (plain dict),
"model" (state_dict), and for training "train_config", "optimizer", "scheduler", "scaler",
"step", "epoch", "best_metric", "skipped_steps" and "rng". Every value is a tensor, a plain
container or a scalar, so torch.load(..., weights_only=True) reads it.
"""

import os
import random
import zipfile
from pathlib import Path

import numpy as np
import torch

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or lacks the training state."""


def save_checkpoint(state: dict, path):
    """Write state to path atomically: a temporary file in the same folder, then os.replace."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save({"format_version": FORMAT_VERSION, **state}, temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint with weights_only=True; the error names the path on failure."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if _is_exported_model(path):
        raise CheckpointError(
            f"{path} is an exported model for the node (.pt2 from training/export.py), not a "
            "training checkpoint; pass the best.pt or last.pt of a training run")
    try:
        content = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # truncated zip, pickle rejected by weights_only, ...
        # torch's message continues with advice to load with weights_only=False, which would
        # run code from the file; keep only its first line.
        lines = str(error).strip().splitlines()
        reason = type(error).__name__ + (f": {lines[0]}" if lines else "")
        raise CheckpointError(
            f"checkpoint {path} could not be read ({reason}); the file is truncated, corrupt "
            "or not a checkpoint written by training/train.py") from error
    if not isinstance(content, dict) or "model" not in content or "model_config" not in content:
        raise CheckpointError(f"{path} is not a protomtl checkpoint: expected a dict with "
                              "'model' and 'model_config'")
    version = content.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format_version {version!r}; this "
                              f"version of the tools reads {FORMAT_VERSION}")
    return content


def _is_exported_model(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return "metadata.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def capture_rng_state() -> dict:
    """Return the Python, NumPy and torch RNG states as tensors and plain lists."""
    version, python_state, gauss = random.getstate()
    kind, keys, position, has_gauss, cached = np.random.get_state()
    state = {
        "python": {"version": version, "state": list(python_state), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict):
    """Restore the RNG states written by capture_rng_state."""
    python = state["python"]
    random.setstate((python["version"], tuple(python["state"]), python["gauss"]))
    numpy_state = state["numpy"]
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32),
                         numpy_state["position"], numpy_state["has_gauss"],
                         numpy_state["cached"]))
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def all_finite(module: torch.nn.Module) -> bool:
    """Return True when every parameter and buffer of module is finite."""
    tensors = list(module.parameters()) + list(module.buffers())
    return all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())
