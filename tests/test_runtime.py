"""Tests of pre/post-processing, colour images, checkpoints and the eager inference engine."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from protomtl_ros.network import ModelConfig, build_model
from protomtl_ros.runtime import (
    IMAGENET_MEAN, IMAGENET_STD, InferenceEngine, InputError, ModelLoadError, Predictions,
    model_from_checkpoint, normals_to_color, postprocess, preprocess, read_checkpoint,
    segmentation_to_color, write_checkpoint,
)

torch.set_num_threads(1)

CONFIG = ModelConfig.for_size("tiny", input_height=96, input_width=128)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(CONFIG).eval()


@pytest.fixture(scope="module")
def engine(model):
    return InferenceEngine.from_model(model, CONFIG)


@pytest.fixture(scope="module")
def checkpoint_path(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("checkpoint") / "model.pt"
    write_checkpoint(path, model, CONFIG, step=7)
    return path


def random_rgb(height, width, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_preprocess_shape_and_normalisation():
    rgb = np.full((10, 20, 3), 255, dtype=np.uint8)
    x = preprocess(rgb, (96, 128))
    assert x.shape == (1, 3, 96, 128)
    assert x.dtype == torch.float32
    expected = (1.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert torch.allclose(x[0, :, 50, 60], expected, atol=1e-5)


def test_preprocess_one_pixel_image():
    rgb = np.array([[[0, 128, 255]]], dtype=np.uint8)
    x = preprocess(rgb, (64, 96))
    assert x.shape == (1, 3, 64, 96)
    assert torch.isfinite(x).all()
    assert torch.allclose(x[0, 0], x[0, 0, 0, 0].expand(64, 96))


@pytest.mark.parametrize("bad,message", [
    (np.zeros((4, 4), dtype=np.uint8), "H x W x 3"),
    (np.zeros((4, 4, 4), dtype=np.uint8), "H x W x 3"),
    (np.zeros((0, 4, 3), dtype=np.uint8), "H x W x 3"),
    (np.zeros((4, 4, 3), dtype=np.float32), "uint8"),
    ([[0, 0, 0]], "numpy array"),
])
def test_preprocess_rejects_bad_input(bad, message):
    with pytest.raises(InputError, match=message):
        preprocess(bad, (64, 96))


def test_postprocess_marks_invalid_depth():
    depth = torch.tensor([[[[1.0, float("nan")], [-0.5, 20.0]]]])
    logits = torch.zeros(1, 13, 2, 2)
    normals = torch.zeros(1, 3, 2, 2)
    normals[:, 2] = -1.0
    predictions = postprocess(logits, depth, normals, (2, 2), 0.0, 10.0)
    assert predictions.depth[0, 0] == pytest.approx(1.0)
    assert np.isnan(predictions.depth[0, 1])
    assert np.isnan(predictions.depth[1, 0])
    assert np.isnan(predictions.depth[1, 1])


def test_postprocess_resizes_to_exact_size():
    logits = torch.randn(1, 13, 12, 16)
    depth = torch.rand(1, 1, 12, 16) * 5
    normals = torch.nn.functional.normalize(torch.randn(1, 3, 12, 16), dim=1)
    predictions = postprocess(logits, depth, normals, (31, 7), 0.0, 10.0)
    assert predictions.depth.shape == (31, 7)
    assert predictions.depth.dtype == np.float32
    assert predictions.class_ids.shape == (31, 7)
    assert predictions.class_ids.dtype == np.uint8
    assert predictions.normals.shape == (31, 7, 3)
    assert predictions.normals.dtype == np.float32


def test_postprocess_with_executor_matches_serial():
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(1, 13, 24, 32, generator=generator)
    depth = torch.rand(1, 1, 24, 32, generator=generator) * 5.0
    normals = torch.nn.functional.normalize(torch.randn(1, 3, 24, 32, generator=generator), dim=1)

    serial = postprocess(logits, depth, normals, (50, 70), 0.1, 10.0)
    with ThreadPoolExecutor(max_workers=1) as executor:
        parallel = postprocess(logits, depth, normals, (50, 70), 0.1, 10.0, executor=executor)

    assert np.array_equal(serial.class_ids, parallel.class_ids)
    assert np.array_equal(serial.depth, parallel.depth, equal_nan=True)
    assert np.array_equal(serial.normals, parallel.normals, equal_nan=True)


def test_postprocess_class_ids_follow_argmax():
    logits = torch.zeros(1, 13, 2, 2)
    logits[0, 3, 0, :] = 5.0
    logits[0, 12, 1, :] = 5.0
    predictions = postprocess(logits, torch.ones(1, 1, 2, 2), torch.ones(1, 3, 2, 2),
                              (4, 4), 0.0, 10.0)
    assert (predictions.class_ids[:2] == 3).all()
    assert (predictions.class_ids[2:] == 12).all()


def test_postprocess_renormalises_normals_and_marks_zero():
    normals = torch.zeros(1, 3, 1, 2)
    normals[0, :, 0, 0] = torch.tensor([0.0, 3.0, 4.0])
    predictions = postprocess(torch.zeros(1, 13, 1, 2), torch.ones(1, 1, 1, 2), normals,
                              (1, 2), 0.0, 10.0)
    np.testing.assert_allclose(predictions.normals[0, 0], [0.0, 0.6, 0.8], atol=1e-6)
    assert np.isnan(predictions.normals[0, 1]).all()


def test_segmentation_colors_use_palette():
    ids = np.array([[0, 1], [12, 200]], dtype=np.uint8)
    palette = [(10, 20, 30), (40, 50, 60)] + [(i, i, i) for i in range(11)]
    colors = segmentation_to_color(ids, palette)
    assert colors.shape == (2, 2, 3)
    assert colors.dtype == np.uint8
    assert tuple(colors[0, 0]) == (10, 20, 30)
    assert tuple(colors[0, 1]) == (40, 50, 60)
    assert tuple(colors[1, 0]) == (10, 10, 10)
    assert tuple(colors[1, 1]) == (0, 0, 0)


def test_normals_colors_formula():
    normals = np.array([[[1.0, -1.0, 0.0], [np.nan, np.nan, np.nan]]], dtype=np.float32)
    colors = normals_to_color(normals)
    assert colors.dtype == np.uint8
    assert tuple(colors[0, 0]) == (255, 0, 128)
    assert tuple(colors[0, 1]) == (0, 0, 0)


@pytest.mark.parametrize("height,width", [(127, 129), (1, 1), (481, 641), (96, 128)])
def test_engine_output_at_input_size(engine, height, width):
    predictions = engine.predict(random_rgb(height, width))
    assert isinstance(predictions, Predictions)
    assert predictions.depth.shape == (height, width)
    assert predictions.class_ids.shape == (height, width)
    assert predictions.normals.shape == (height, width, 3)
    assert predictions.segmentation_color().shape == (height, width, 3)
    assert predictions.normals_color().shape == (height, width, 3)


def test_engine_value_ranges(engine):
    predictions = engine.predict(random_rgb(127, 129, seed=3))
    depth = predictions.depth[np.isfinite(predictions.depth)]
    assert depth.size > 0
    assert depth.min() >= 0.0
    assert depth.max() <= CONFIG.max_depth_m
    assert predictions.class_ids.max() < CONFIG.num_classes
    length = np.linalg.norm(predictions.normals, axis=-1)
    np.testing.assert_allclose(length, 1.0, atol=1e-4)
    assert engine.forward_ms > 0.0


def test_engine_attributes(engine):
    assert engine.backend == "eager"
    assert engine.input_size == (96, 128)
    assert len(engine.class_names) == 13
    assert len(engine.palette) == 13
    assert engine.metadata["model_size"] == "tiny"


def test_engine_rejects_bad_frame(engine):
    with pytest.raises(InputError):
        engine.predict(np.zeros((8, 8, 4), dtype=np.uint8))


def test_checkpoint_round_trip(model, checkpoint_path):
    state = read_checkpoint(checkpoint_path)
    assert state["format_version"] == 1
    assert state["step"] == 7
    restored, config = model_from_checkpoint(checkpoint_path)
    assert config == CONFIG
    assert not restored.training
    x = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        expected = model(x)["depth"]
        actual = restored(x)["depth"]
    assert torch.equal(expected, actual)


def test_engine_from_checkpoint(engine, checkpoint_path):
    loaded = InferenceEngine.from_file(checkpoint_path)
    assert loaded.backend == "eager"
    rgb = random_rgb(50, 60, seed=1)
    np.testing.assert_array_equal(loaded.predict(rgb).class_ids, engine.predict(rgb).class_ids)


def test_engine_checkpoint_rejects_exported_backend(checkpoint_path):
    with pytest.raises(ModelLoadError, match="not an artifact"):
        InferenceEngine.from_file(checkpoint_path, backend="exported")


def test_engine_rejects_unknown_backend(checkpoint_path):
    with pytest.raises(ModelLoadError, match="onnx"):
        InferenceEngine.from_file(checkpoint_path, backend="onnx")


def test_checkpoint_missing_file(tmp_path):
    path = tmp_path / "absent.pt"
    with pytest.raises(ModelLoadError, match="absent.pt"):
        read_checkpoint(path)
    with pytest.raises(ModelLoadError, match="not found"):
        InferenceEngine.from_file(path)


def test_checkpoint_truncated(checkpoint_path, tmp_path):
    data = checkpoint_path.read_bytes()
    path = tmp_path / "truncated.pt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated.pt"):
        InferenceEngine.from_file(path)


def test_checkpoint_random_bytes(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ModelLoadError, match="noise.pt"):
        read_checkpoint(path)


def test_checkpoint_without_required_keys(tmp_path):
    path = tmp_path / "weights_only.pt"
    torch.save({"model": {}}, path)
    with pytest.raises(ModelLoadError, match="model_config"):
        read_checkpoint(path)


def test_checkpoint_wrong_version(model, tmp_path):
    path = tmp_path / "future.pt"
    write_checkpoint(path, model, CONFIG, format_version=99)
    with pytest.raises(ModelLoadError, match="99"):
        read_checkpoint(path)


def test_checkpoint_bad_model_config(model, tmp_path):
    path = tmp_path / "bad_config.pt"
    torch.save({"format_version": 1, "model_config": {"colour": 1}, "model": {}}, path)
    with pytest.raises(ModelLoadError, match="colour"):
        model_from_checkpoint(path)


def test_checkpoint_weights_mismatch(model, tmp_path):
    path = tmp_path / "mismatch.pt"
    write_checkpoint(path, model, CONFIG.replace(fused_channels=96))
    with pytest.raises(ModelLoadError, match="do not match"):
        model_from_checkpoint(path)


def test_checkpoint_refuses_pickled_objects(tmp_path):
    path = tmp_path / "pickled.pt"
    torch.save({"format_version": 1, "model_config": {}, "model": {}, "obj": Predictions(
        np.zeros(1), np.zeros(1), np.zeros(1))}, path)
    with pytest.raises(ModelLoadError, match="pickled.pt"):
        read_checkpoint(path)


def test_postprocess_rejects_nonfinite_logits():
    from protomtl_ros.runtime.errors import InvalidOutputError
    from protomtl_ros.runtime.postprocess import postprocess

    logits = torch.zeros(1, 13, 8, 8)
    logits[0, 3, 2, 2] = float("nan")
    depth = torch.ones(1, 1, 8, 8)
    normals = torch.nn.functional.normalize(torch.ones(1, 3, 8, 8), dim=1)

    with pytest.raises(InvalidOutputError, match="segmentation logits"):
        postprocess(logits, depth, normals, (16, 16), 0.0, 10.0)
