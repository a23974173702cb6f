"""Tests of the .pt2 artifact: export parity, metadata, fresh-process loading, bad files."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from protomtl_ros.network import InferenceGraph, ModelConfig, build_model
from protomtl_ros.runtime import InferenceEngine, ModelLoadError
from protomtl_ros.runtime.artifact import (
    BACKEND_MEMBERS, check_program_archive, load_exported, read_metadata, save_artifact,
)

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
HEIGHT, WIDTH = 64, 96
TOLERANCE = 1e-4


def make_config(size="tiny", **overrides):
    values = {"input_height": HEIGHT, "input_width": WIDTH, **overrides}
    return ModelConfig.for_size(size, **values)


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    torch.manual_seed(0)
    config = make_config()
    model = build_model(config).eval()
    path = tmp_path_factory.mktemp("artifact") / "tiny.pt2"
    save_artifact(path, model, config)
    return path, model, config


def max_differences(engine, model, batch):
    x = torch.randn(batch, 3, HEIGHT, WIDTH, generator=torch.Generator().manual_seed(batch))
    exported = engine.forward(x)
    with torch.no_grad():
        eager = InferenceGraph(model)(x)
    return [float((a - b).abs().max()) for a, b in zip(exported, eager)]


@pytest.mark.parametrize("batch", [1, 3])
def test_tiny_export_matches_eager(tiny_artifact, batch):
    path, model, _ = tiny_artifact
    engine = InferenceEngine.from_file(path)
    semseg, depth, normals = max_differences(engine, model, batch)
    assert semseg <= TOLERANCE
    assert depth <= TOLERANCE
    assert normals <= TOLERANCE


@pytest.mark.parametrize("size,overrides", [
    ("small", {}),
    ("tiny", {"variant": "plain"}),
    ("tiny", {"krt_keys": "pixels", "krt_stride": 8, "vq_mode": "ema"}),
])
def test_other_configs_export_match_eager(tmp_path, size, overrides):
    torch.manual_seed(1)
    config = make_config(size, **overrides)
    model = build_model(config).eval()
    path = tmp_path / "model.pt2"
    save_artifact(path, model, config)
    engine = InferenceEngine.from_file(path)
    semseg, depth, normals = max_differences(engine, model, 2)
    assert semseg <= TOLERANCE
    assert depth <= TOLERANCE
    assert normals <= TOLERANCE


def test_fixed_batch_export(tmp_path):
    config = make_config()
    model = build_model(config).eval()
    path = tmp_path / "batch1.pt2"
    metadata = save_artifact(path, model, config, dynamic_batch=False)
    assert metadata["dynamic_batch"] is False
    engine = InferenceEngine.from_file(path)
    assert max(max_differences(engine, model, 1)) <= TOLERANCE


def test_metadata_contents(tiny_artifact):
    path, _, config = tiny_artifact
    metadata = read_metadata(path)
    assert metadata["format_version"] == 1
    assert metadata["tasks"] == ["semseg", "depth", "normals"]
    assert len(metadata["class_names"]) == 13
    assert len(metadata["palette"]) == 13
    assert metadata["input_size"] == [HEIGHT, WIDTH]
    assert metadata["max_depth_m"] == config.max_depth_m
    assert metadata["backend"] == "exported"
    assert metadata["precision"] == "fp32"
    assert metadata["dynamic_batch"] is True
    assert metadata["compiled_input_shape"] == [1, 3, HEIGHT, WIDTH]
    assert metadata["versions"]["torch"] == torch.__version__
    assert metadata["model_config"] == config.to_dict()
    assert metadata["members"]["exported"]["member"] == "exported.pt2"


def test_container_members(tiny_artifact):
    path, _, _ = tiny_artifact
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    assert names == ["metadata.json", "exported.pt2"]


def test_artifact_mode_follows_umask(tiny_artifact):
    path, _, _ = tiny_artifact
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask


def test_engine_attributes_from_artifact(tiny_artifact):
    path, _, _ = tiny_artifact
    engine = InferenceEngine.from_file(path)
    assert engine.backend == "exported"
    assert engine.input_size == (HEIGHT, WIDTH)
    predictions = engine.predict(np.zeros((33, 45, 3), dtype=np.uint8))
    assert predictions.depth.shape == (33, 45)
    assert predictions.normals.shape == (33, 45, 3)


def test_artifact_rejects_eager_backend(tiny_artifact):
    path, _, _ = tiny_artifact
    with pytest.raises(ModelLoadError, match="eager"):
        InferenceEngine.from_file(path, backend="eager")


def test_artifact_missing_backend_member(tiny_artifact):
    path, _, _ = tiny_artifact
    with pytest.raises(ModelLoadError, match="aoti"):
        InferenceEngine.from_file(path, backend="aoti")


def test_auto_skips_member_without_loader(tiny_artifact, tmp_path):
    source, _, _ = tiny_artifact
    path = tmp_path / "with_aoti.pt2"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as copy:
        for name in original.namelist():
            copy.writestr(name, original.read(name))
        copy.writestr(BACKEND_MEMBERS["aoti"], b"not compiled")
    warnings = []
    engine = InferenceEngine.from_file(path, warn=warnings.append)
    assert engine.backend == "exported"
    assert len(warnings) == 1
    assert "aoti" in warnings[0]


def test_fresh_process_loads_artifact(tiny_artifact, tmp_path):
    path, model, config = tiny_artifact
    output = tmp_path / "prediction.npz"
    script = (
        "import sys, numpy as np\n"
        "from protomtl_ros.runtime import InferenceEngine\n"
        "rgb = np.random.default_rng(5).integers(0, 256, (70, 90, 3), dtype=np.uint8)\n"
        f"engine = InferenceEngine.from_file({str(path)!r})\n"
        "p = engine.predict(rgb)\n"
        f"np.savez({str(output)!r}, depth=p.depth, class_ids=p.class_ids, normals=p.normals,"
        " training=any(m.startswith('protomtl_training') for m in sys.modules),"
        " backend=engine.backend)\n"
    )
    environment = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-c", script], env=environment, cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr

    saved = np.load(output)
    assert str(saved["backend"]) == "exported"
    assert not bool(saved["training"])
    rgb = np.random.default_rng(5).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    eager = InferenceEngine.from_model(model, config).predict(rgb)
    np.testing.assert_allclose(saved["depth"], eager.depth, atol=1e-4)
    np.testing.assert_allclose(saved["normals"], eager.normals, atol=1e-4)
    assert (saved["class_ids"] == eager.class_ids).mean() > 0.999


def test_missing_artifact(tmp_path):
    with pytest.raises(ModelLoadError, match="absent.pt2"):
        InferenceEngine.from_file(tmp_path / "absent.pt2")


def test_folder_as_model_path(tmp_path):
    with pytest.raises(ModelLoadError, match="is a folder"):
        InferenceEngine.from_file(tmp_path)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this case needs a machine without CUDA")
def test_cuda_device_without_cuda(tiny_artifact):
    path, _, _ = tiny_artifact
    with pytest.raises(ModelLoadError, match="CUDA is not available here"):
        InferenceEngine.from_file(path, device="cuda")


def test_exported_program_moves_to_device(tiny_artifact):
    # The meta device takes the place of a GPU here: the same pass moves the weights.
    path, _, config = tiny_artifact
    runner = load_exported(path, read_metadata(path), "meta")

    outputs = runner(torch.zeros(1, 3, HEIGHT, WIDTH, device="meta"))

    assert len(outputs) == 3
    for output in outputs:
        assert output.device.type == "meta"
    assert tuple(outputs[0].shape) == (1, config.num_classes, HEIGHT, WIDTH)


def test_truncated_artifact(tiny_artifact, tmp_path):
    source, _, _ = tiny_artifact
    data = source.read_bytes()
    path = tmp_path / "truncated.pt2"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError) as error:
        InferenceEngine.from_file(path)
    assert "truncated.pt2" in str(error.value)
    assert "expected a protomtl_ros artifact" in str(error.value)


def test_random_bytes_artifact(tmp_path):
    path = tmp_path / "noise.pt2"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelLoadError, match="noise.pt2"):
        InferenceEngine.from_file(path)


def test_zip_without_metadata(tmp_path):
    path = tmp_path / "plain.pt2"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("exported.pt2", b"data")
    with pytest.raises(ModelLoadError, match="metadata.json"):
        InferenceEngine.from_file(path)


def test_metadata_without_program(tiny_artifact, tmp_path):
    source, _, _ = tiny_artifact
    path = tmp_path / "no_program.pt2"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as copy:
        copy.writestr("metadata.json", original.read("metadata.json"))
    with pytest.raises(ModelLoadError, match="no loadable program"):
        InferenceEngine.from_file(path)


def test_invalid_metadata_json(tmp_path):
    path = tmp_path / "bad_metadata.pt2"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", "{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        read_metadata(path)


def test_corrupt_program_member(tiny_artifact, tmp_path):
    source, _, _ = tiny_artifact
    path = tmp_path / "corrupt_program.pt2"
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(path, "w") as copy:
        copy.writestr("metadata.json", original.read("metadata.json"))
        copy.writestr("exported.pt2", b"garbage" * 100)
    with pytest.raises(ModelLoadError, match="corrupt_program.pt2"):
        InferenceEngine.from_file(path)


def test_program_with_pickled_payload_refused(tiny_artifact):
    source, _, _ = tiny_artifact
    with zipfile.ZipFile(source) as original:
        program = original.read("exported.pt2")

    rewritten = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(program)) as inner, zipfile.ZipFile(rewritten, "w") as copy:
        for name in inner.namelist():
            data = inner.read(name)
            if name.endswith("_weights_config.json"):
                config = json.loads(data)
                first = next(iter(config["config"].values()))
                first["use_pickle"] = True
                data = json.dumps(config).encode()
            copy.writestr(name, data)

    with pytest.raises(ModelLoadError, match="unpickled"):
        check_program_archive(rewritten.getvalue(), "test program")
