"""Session-wide test set-up: loopback-only DDS and a tiny model file for node tests."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Every ROS 2 participant created by the tests (in this process or in node processes) stays
# on the loopback interface and uses the shipped shared-memory profile for large images.
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault(
    "FASTDDS_DEFAULT_PROFILES_FILE", str(REPO_ROOT / "config" / "fastdds_shm.xml")
)

# Network input of the tiny test model, small so that CPU inference stays fast.
TINY_INPUT_HEIGHT = 64
TINY_INPUT_WIDTH = 96


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """Write a randomly initialised tiny model as a training checkpoint (format_version 1)."""
    torch = pytest.importorskip("torch", reason="torch is needed to build the test model")
    try:
        from protomtl_ros.network import ModelConfig, build_model
    except ImportError as error:
        pytest.skip(f"the network package cannot be imported yet: {error}")

    torch.manual_seed(0)
    config = ModelConfig.for_size(
        "tiny", input_height=TINY_INPUT_HEIGHT, input_width=TINY_INPUT_WIDTH
    )
    model = build_model(config).eval()

    path = tmp_path_factory.mktemp("model") / "tiny_checkpoint.pt"
    checkpoint = {
        "format_version": 1,
        "model_config": config.to_dict(),
        "model": model.state_dict(),
    }
    torch.save(checkpoint, path)
    return path
