"""Training checkpoints: a dict with format_version, model_config and the model state dict."""

import os
import pickle
import zipfile

import torch

from ..network import ModelConfig, build_model
from .container import is_container
from .errors import ModelLoadError

CHECKPOINT_FORMAT_VERSION = 1
REQUIRED_KEYS = ("format_version", "model_config", "model")


def write_checkpoint(path, model: torch.nn.Module, config: ModelConfig, **extra) -> None:
    """Save model weights and config (plus extra plain entries) in the checkpoint format."""
    state = {
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "model_config": config.to_dict(),
        "model": model.state_dict(),
    }
    state.update(extra)
    torch.save(state, path)


def read_checkpoint(path) -> dict:
    """Load a checkpoint dict with weights_only=True; raise ModelLoadError when unusable."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ModelLoadError(
            f"checkpoint {path!r} is a folder; pass a checkpoint file in it, such as "
            f"{os.path.join(path, 'best.pt')!r}"
        )
    if not os.path.isfile(path):
        raise ModelLoadError(
            f"checkpoint not found: {path!r}; expected a training checkpoint written by "
            "training/train.py"
        )
    if is_container(path):
        raise ModelLoadError(
            f"{path!r} is an exported model (.pt2 from training/export.py), not a training "
            "checkpoint; pass the best.pt or last.pt of a training run"
        )

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, zipfile.BadZipFile, ValueError,
            KeyError, OSError) as error:
        # torch's message goes on to suggest weights_only=False, which would run code from
        # the file; keep only its first line.
        lines = str(error).strip().splitlines()
        reason = type(error).__name__ + (f": {lines[0]}" if lines else "")
        raise ModelLoadError(
            f"{path!r} is not a readable training checkpoint (truncated or another kind of "
            f"file?): {reason}"
        ) from error

    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        keys = sorted(state) if isinstance(state, dict) else type(state).__name__
        raise ModelLoadError(
            f"{path!r} is not a protomtl_ros checkpoint: expected a dict with keys "
            f"{list(REQUIRED_KEYS)}, found {keys}"
        )

    version = state["format_version"]
    if version != CHECKPOINT_FORMAT_VERSION:
        raise ModelLoadError(
            f"{path!r} has checkpoint format_version {version!r}; this runtime reads "
            f"version {CHECKPOINT_FORMAT_VERSION}"
        )
    return state


def config_from_checkpoint(state: dict, path) -> ModelConfig:
    """Build the ModelConfig stored in a checkpoint dict."""
    try:
        return ModelConfig.from_dict(dict(state["model_config"]))
    except (TypeError, ValueError) as error:
        raise ModelLoadError(
            f"{os.fspath(path)!r} has an invalid model_config: {error}"
        ) from error


def model_from_checkpoint(path, device="cpu") -> tuple[torch.nn.Module, ModelConfig]:
    """Rebuild the network from a checkpoint; return (model in eval mode, config)."""
    state = read_checkpoint(path)
    config = config_from_checkpoint(state, path)

    # The checkpoint carries the trained weights, so never fetch pretrained ones here.
    model = build_model(config.replace(pretrained=None))
    try:
        model.load_state_dict(state["model"])
    except (RuntimeError, TypeError, AttributeError) as error:
        raise ModelLoadError(
            f"{os.fspath(path)!r}: weights do not match the {config.size} {config.variant} "
            f"network in its model_config: {error}"
        ) from error
    return model.to(device).eval(), config
