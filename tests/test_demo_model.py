"""The committed demo model loads with the current runtime and metadata format."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from protomtl_ros.network import TASKS
from protomtl_ros.runtime.artifact import read_metadata
from protomtl_ros.runtime.engine import InferenceEngine
from protomtl_ros.runtime.metadata import METADATA_FORMAT_VERSION

REPO_ROOT = Path(__file__).resolve().parents[1]
DEMO_MODEL = REPO_ROOT / "models" / "protomtl_tiny_demo.pt2"
FRAME = REPO_ROOT / "data" / "samples" / "real" / "nyu_0551" / "rgb.jpg"

pytestmark = pytest.mark.skipif(
    not DEMO_MODEL.is_file(), reason=f"{DEMO_MODEL} is not built; run `make demo-model`"
)


def test_demo_model_metadata_format():
    metadata = read_metadata(DEMO_MODEL)

    assert metadata["format_version"] == METADATA_FORMAT_VERSION
    assert metadata["tasks"] == list(TASKS)
    assert len(metadata["class_names"]) == 13
    assert len(metadata["palette"]) == 13
    assert metadata["model_size"] == "tiny"


def test_demo_model_predicts_real_frame():
    engine = InferenceEngine.from_file(DEMO_MODEL, device="cpu")
    with Image.open(FRAME) as image:
        rgb = np.asarray(image.convert("RGB"))

    predictions = engine.predict(rgb)

    assert engine.backend == "exported"
    assert predictions.depth.shape == rgb.shape[:2]
    assert predictions.class_ids.shape == rgb.shape[:2]
    assert int(predictions.class_ids.max()) < 13
    assert np.isfinite(predictions.depth).any()
    norms = np.linalg.norm(predictions.normals, axis=-1)
    assert np.allclose(norms, 1.0, atol=1e-3)
