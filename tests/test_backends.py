"""Tests of the compiled backends: export script, AOTInductor on the CPU, fallback rules,
Torch-TensorRT where it can run, and the GPU check script on a machine without CUDA."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import export as export_tool
from protomtl_ros.network import InferenceGraph
from protomtl_ros.runtime import (
    InferenceEngine, InputError, ModelLoadError, model_from_checkpoint, preprocess,
)
from protomtl_ros.runtime.backends import (
    BackendUnavailableError, compile_target, import_torch_tensorrt, precision_settings,
    torch_tensorrt_version,
)
from protomtl_ros.runtime.container import BACKEND_MEMBERS, METADATA_MEMBER, write_container

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
FRAME = REPO / "data" / "samples" / "real" / "nyu_0551" / "rgb.jpg"
TOLERANCE = 1e-4
FRAME_SIZES = [(480, 640), (127, 129)]


def export_settings(checkpoint, output, backend, **options):
    return export_tool.ExportSettings(
        checkpoint=Path(checkpoint), backend=backend, output=Path(output), **options
    )


@pytest.fixture(scope="module")
def exported_artifact(tiny_model_path, tmp_path_factory) -> Path:
    output = tmp_path_factory.mktemp("exported") / "tiny_exported.pt2"
    export_tool.export_artifact(export_settings(tiny_model_path, output, "exported"))
    return output


@pytest.fixture(scope="module")
def aoti_artifact(tiny_model_path, tmp_path_factory) -> Path:
    """Compile the only AOTInductor package of the module (50-120 s measured on 2 shared cores)."""
    output = tmp_path_factory.mktemp("aoti") / "tiny_aoti.pt2"
    export_tool.export_artifact(export_settings(tiny_model_path, output, "aoti"))
    return output


def read_frame(height: int, width: int) -> np.ndarray:
    with Image.open(FRAME) as image:
        return np.array(image.convert("RGB").resize((width, height), Image.BILINEAR))


def rewrite_artifact(source: Path, target: Path, change_metadata=None, replace_members=None):
    """Copy an artifact with its metadata changed and some members replaced (None: removed)."""
    with zipfile.ZipFile(source) as archive:
        metadata = json.loads(archive.read(METADATA_MEMBER))
        members = {name: archive.read(name) for name in archive.namelist()
                   if name != METADATA_MEMBER}
    if change_metadata is not None:
        change_metadata(metadata)
    for name, data in (replace_members or {}).items():
        if data is None:
            del members[name]
        else:
            members[name] = data
    write_container(target, metadata, members)
    return target


PREDICT_SCRIPT = """
import sys
import numpy as np
import torch
from protomtl_ros.runtime import InferenceEngine, preprocess

path, backend, frames_file, output = sys.argv[1:5]
warnings = []
engine = InferenceEngine.from_file(path, backend=backend, warn=warnings.append)
results = {"backend": np.array(engine.backend), "warnings": np.array(len(warnings))}
frames = np.load(frames_file)
for name in frames.files:
    rgb = frames[name]
    prediction = engine.predict(rgb)
    image = preprocess(rgb, engine.input_size, engine.metadata["mean"], engine.metadata["std"])
    raw = engine.forward(image)
    results[name + "_depth"] = prediction.depth
    results[name + "_normals"] = prediction.normals
    results[name + "_class_ids"] = prediction.class_ids
    for task, tensor in zip(("semseg", "depth", "normals"), raw):
        results[name + "_raw_" + task] = tensor.numpy()
np.savez(output, **results)
"""


def predict_in_fresh_process(path: Path, backend: str, tmp_path: Path) -> dict:
    frames = {f"{h}x{w}": read_frame(h, w) for h, w in FRAME_SIZES}
    frames_file = tmp_path / "frames.npz"
    np.savez(frames_file, **frames)
    output = tmp_path / "predictions.npz"

    environment = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-c", PREDICT_SCRIPT, str(path), backend, str(frames_file), str(output)],
        env=environment, cwd=str(tmp_path), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return dict(np.load(output))


def eager_results(checkpoint: Path) -> dict:
    model, config = model_from_checkpoint(checkpoint)
    engine = InferenceEngine.from_model(model, config)
    graph = InferenceGraph(model).eval()
    results = {}
    for height, width in FRAME_SIZES:
        name = f"{height}x{width}"
        rgb = read_frame(height, width)
        prediction = engine.predict(rgb)
        image = preprocess(rgb, engine.input_size, engine.metadata["mean"],
                           engine.metadata["std"])
        with torch.inference_mode():
            raw = graph(image)
        results[name + "_depth"] = prediction.depth
        results[name + "_normals"] = prediction.normals
        results[name + "_class_ids"] = prediction.class_ids
        for task, tensor in zip(("semseg", "depth", "normals"), raw):
            results[name + "_raw_" + task] = tensor.numpy()
    return results


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["exported", "aoti"])
def test_fresh_process_matches_eager(backend, exported_artifact, aoti_artifact,
                                     tiny_model_path, tmp_path):
    path = exported_artifact if backend == "exported" else aoti_artifact
    saved = predict_in_fresh_process(path, "auto", tmp_path)
    eager = eager_results(tiny_model_path)

    assert str(saved["backend"]) == backend
    assert int(saved["warnings"]) == 0
    for height, width in FRAME_SIZES:
        name = f"{height}x{width}"
        assert saved[name + "_depth"].shape == (height, width)
        assert saved[name + "_normals"].shape == (height, width, 3)
        for task in ("semseg", "depth", "normals"):
            difference = np.abs(saved[name + "_raw_" + task] - eager[name + "_raw_" + task])
            assert difference.max() <= TOLERANCE, f"{name} {task}: {difference.max()}"
        np.testing.assert_allclose(saved[name + "_depth"], eager[name + "_depth"],
                                   atol=TOLERANCE)
        np.testing.assert_allclose(saved[name + "_normals"], eager[name + "_normals"],
                                   atol=TOLERANCE)
        # Class ids may differ only where two logits tie within the tolerance.
        assert (saved[name + "_class_ids"] == eager[name + "_class_ids"]).mean() > 0.999


def test_portable_program_of_aoti_artifact(aoti_artifact, tiny_model_path):
    engine = InferenceEngine.from_file(aoti_artifact, backend="exported")
    model, _ = model_from_checkpoint(tiny_model_path)
    image = torch.randn(1, 3, *engine.input_size, generator=torch.Generator().manual_seed(1))
    compiled = engine.forward(image)
    with torch.inference_mode():
        eager = InferenceGraph(model)(image)
    assert engine.backend == "exported"
    for ours, reference in zip(compiled, eager):
        assert (ours - reference).abs().max().item() <= TOLERANCE


def test_aoti_metadata(aoti_artifact):
    with zipfile.ZipFile(aoti_artifact) as archive:
        names = archive.namelist()
        metadata = json.loads(archive.read(METADATA_MEMBER))
    height, width = metadata["input_size"]
    description = metadata["members"]["aoti"]

    assert BACKEND_MEMBERS["aoti"] in names
    assert BACKEND_MEMBERS["exported"] in names
    assert metadata["backend"] == "aoti"
    assert metadata["precision"] == "fp32"
    assert metadata["compiled_input_shape"] == [1, 3, height, width]
    assert metadata["versions"]["torch"] == torch.__version__
    assert "torchvision" in metadata["versions"]
    assert "torch_tensorrt" in metadata["versions"]
    assert metadata["gpu_name"] is None
    assert "created" in metadata
    assert description["device"] == "cpu"
    assert description["input_shape"] == [1, 3, height, width]
    assert description["machine"] == compile_target(torch.device("cpu"))["machine"]
    assert description["cpu_vector_isa"] == compile_target(torch.device("cpu"))["cpu_vector_isa"]


def test_exported_metadata(exported_artifact):
    with zipfile.ZipFile(exported_artifact) as archive:
        names = archive.namelist()
        metadata = json.loads(archive.read(METADATA_MEMBER))
    assert metadata["backend"] == "exported"
    assert BACKEND_MEMBERS["aoti"] not in names
    assert BACKEND_MEMBERS["tensorrt"] not in names


def test_compiled_program_rejects_other_shape(aoti_artifact):
    engine = InferenceEngine.from_file(aoti_artifact)
    height, width = engine.input_size
    assert engine.backend == "aoti"
    with pytest.raises(InputError, match="compiled program takes input of shape"):
        engine.runner(torch.zeros(1, 3, height + 32, width))
    with pytest.raises(InputError, match="compiled program takes input of shape"):
        engine.runner(torch.zeros(2, 3, height, width))


def mark_member(backend: str, **changes):
    def change(metadata):
        metadata["members"][backend].update(changes)
    return change


@pytest.mark.parametrize("changes, reason", [
    ({"device": "cuda"}, "compiled for 'cuda'"),
    ({"machine": "aarch64"}, "aarch64"),
    ({"cpu_vector_isa": "avx512_future"}, "avx512_future"),
    ({"versions": {"torch": "2.0.0"}}, "torch 2.0.0"),
])
def test_aoti_falls_back_to_portable(aoti_artifact, tmp_path, changes, reason):
    path = rewrite_artifact(aoti_artifact, tmp_path / "marked.pt2",
                            mark_member("aoti", **changes))
    warnings = []
    engine = InferenceEngine.from_file(path, warn=warnings.append)
    assert engine.backend == "exported"
    assert len(warnings) == 1
    assert reason in warnings[0]
    assert engine.predict(read_frame(127, 129)).depth.shape == (127, 129)


def test_forced_aoti_reports_reason(aoti_artifact, tmp_path):
    path = rewrite_artifact(aoti_artifact, tmp_path / "cuda.pt2",
                            mark_member("aoti", device="cuda"))
    with pytest.raises(ModelLoadError, match="compiled for 'cuda'"):
        InferenceEngine.from_file(path, backend="aoti")


def test_corrupt_aoti_member_falls_back(aoti_artifact, tmp_path):
    path = rewrite_artifact(aoti_artifact, tmp_path / "corrupt.pt2",
                            replace_members={BACKEND_MEMBERS["aoti"]: b"not a package"})
    warnings = []
    engine = InferenceEngine.from_file(path, warn=warnings.append)
    assert engine.backend == "exported"
    assert len(warnings) == 1
    assert "loading the aoti program failed" in warnings[0]


def tensorrt_marked(metadata):
    """Describe the artifact's compiled member as a TensorRT program built on a GPU."""
    description = dict(metadata["members"].pop("aoti"), device="cuda", gpu_name="NVIDIA H200",
                       cuda_capability=[9, 0], member=BACKEND_MEMBERS["tensorrt"])
    metadata["members"]["tensorrt"] = description
    metadata["backend"] = "tensorrt"


def test_tensorrt_artifact_falls_back_without_cuda(aoti_artifact, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: this case needs a machine without CUDA")

    with zipfile.ZipFile(aoti_artifact) as archive:
        program = archive.read(BACKEND_MEMBERS["aoti"])
    members = {BACKEND_MEMBERS["tensorrt"]: program, BACKEND_MEMBERS["aoti"]: None}
    path = rewrite_artifact(aoti_artifact, tmp_path / "trt.pt2", tensorrt_marked, members)
    warnings = []
    engine = InferenceEngine.from_file(path, warn=warnings.append)
    assert engine.backend == "exported"
    assert len(warnings) == 1
    assert "TensorRT needs a CUDA device" in warnings[0]
    with pytest.raises(ModelLoadError, match="TensorRT needs a CUDA device"):
        InferenceEngine.from_file(path, backend="tensorrt")


def test_incompatible_member_and_bad_portable_raise(aoti_artifact, tmp_path):
    path = rewrite_artifact(aoti_artifact, tmp_path / "broken.pt2",
                            mark_member("aoti", device="cuda"),
                            {BACKEND_MEMBERS["exported"]: b"not a program"})
    with pytest.raises(ModelLoadError, match="not a valid torch.export program"):
        InferenceEngine.from_file(path, warn=lambda message: None)


@pytest.mark.parametrize("version, strategy, present, absent", [
    ("2.8.0", "weak_typing", {"enabled_precisions"}, {"use_explicit_typing"}),
    ("2.8.0a0+nv25.06", "weak_typing", {"enabled_precisions"}, {"use_explicit_typing"}),
    ("2.11.0+cu130", "half_model", {"use_explicit_typing"}, {"enabled_precisions"}),
    ("2.13.0", "autocast", {"enable_autocast", "low_precision_type"}, {"enabled_precisions"}),
])
def test_tensorrt_fp16_settings_by_version(version, strategy, present, absent):
    chosen, settings = precision_settings(version, "fp16")
    assert chosen == strategy
    assert present <= settings.keys()
    assert not absent & settings.keys()


@pytest.mark.parametrize("version", ["2.8.0", "2.12.1", "2.13.0"])
def test_tensorrt_fp32_settings_disable_tf32(version):
    chosen, settings = precision_settings(version, "fp32")
    assert chosen == "fp32"
    assert settings["disable_tf32"] is True
    assert torch.float16 not in settings.get("enabled_precisions", set())


def test_tensorrt_rejects_unknown_precision():
    with pytest.raises(ValueError, match="int8"):
        precision_settings("2.8.0", "int8")


def test_tensorrt_import_needs_cuda_device():
    with pytest.raises(BackendUnavailableError, match="needs a CUDA device"):
        import_torch_tensorrt(torch.device("cpu"))


def test_export_rejects_fp16_for_aoti(tiny_model_path, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_tool.parse_args(["--checkpoint", str(tiny_model_path), "--backend", "aoti",
                                "--precision", "fp16", "--output", str(tmp_path / "m.pt2")])
    assert exit_info.value.code == 2
    assert "fp16 needs --backend tensorrt" in capsys.readouterr().err


@pytest.mark.parametrize("option, value", [("--height", "100"), ("--width", "0")])
def test_export_rejects_bad_size(tiny_model_path, tmp_path, capsys, option, value):
    with pytest.raises(SystemExit) as exit_info:
        export_tool.parse_args(["--checkpoint", str(tiny_model_path), "--backend", "exported",
                                "--output", str(tmp_path / "m.pt2"), option, value])
    assert exit_info.value.code == 2
    assert f"{option} {value}" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--output", "{tmp}/absent/m.pt2"], "does not exist; create it first"),
    (["--output", "{tmp}/folder.pt2"], "is a folder"),
    (["--output", "{tmp}/m.pt2", "--height", "2048", "--width", "2048"], "at most 1048576"),
])
def test_export_rejects_bad_output_early(tiny_model_path, tmp_path, capsys, extra, message):
    (tmp_path / "folder.pt2").mkdir()
    arguments = [value.format(tmp=tmp_path) for value in extra]
    with pytest.raises(SystemExit) as exit_info:
        export_tool.parse_args(["--checkpoint", str(tiny_model_path), "--backend", "exported",
                                *arguments])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_export_cuda_without_cuda_fails_clearly(tiny_model_path, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: this case needs a machine without CUDA")

    code = export_tool.main(["--checkpoint", str(tiny_model_path), "--backend", "aoti",
                             "--device", "cuda", "--output", str(tmp_path / "m.pt2")])
    assert code == 1
    assert "CUDA is not available" in capsys.readouterr().err
    assert not (tmp_path / "m.pt2").exists()


def test_parity_failures_apply_tolerances():
    close = {"max_abs": 5e-5, "max_ref": 1.0, "relative": 5e-5}
    far = {"max_abs": 2e-2, "max_ref": 1.0, "relative": 2e-2}
    very_far = {"max_abs": 0.5, "max_ref": 1.0, "relative": 0.5}
    assert export_tool.parity_failures({"depth": close}, "fp32") == []
    assert len(export_tool.parity_failures({"depth": far}, "fp32")) == 1
    assert export_tool.parity_failures({"depth": far}, "fp16") == []
    assert len(export_tool.parity_failures({"normals": very_far}, "fp16")) == 1


def test_gpu_check_without_cuda_fails_clearly(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("CUDA is available: this case needs a machine without CUDA")

    output = tmp_path / "gpu_check.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--output", str(output)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    assert "CUDA is not available" in result.stderr
    assert not output.exists()


def tensorrt_unavailable_reason() -> str | None:
    if torch_tensorrt_version() is None:
        return "torch_tensorrt is not installed"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    return None


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_export_matches_eager(tiny_model_path, tmp_path, precision):
    reason = tensorrt_unavailable_reason()
    if reason is not None:
        pytest.skip(f"{reason}: TensorRT export runs only on a CUDA machine with torch_tensorrt")

    output = tmp_path / f"tiny_tensorrt_{precision}.pt2"
    code = export_tool.main(["--checkpoint", str(tiny_model_path), "--backend", "tensorrt",
                             "--precision", precision, "--device", "cuda",
                             "--output", str(output)])
    assert code == 0
    engine = InferenceEngine.from_file(output, device="cuda")
    assert engine.backend == "tensorrt"
    assert engine.predict(read_frame(127, 129)).depth.shape == (127, 129)


# The node with each CPU artifact: the same six outputs, and /diagnostics names the backend.
NODE_DOMAIN_ID = 57
NODE_OUTPUTS = (
    "/protomtl/depth/image", "/protomtl/segmentation/image", "/protomtl/segmentation/color",
    "/protomtl/normals/image", "/protomtl/normals/color",
)


@pytest.mark.parametrize("artifact_fixture, backend", [
    ("exported_artifact", "exported"),
    ("aoti_artifact", "aoti"),
])
def test_node_runs_artifact(artifact_fixture, backend, request):
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import Image as ImageMsg

    from ros_helpers import (
        NodeProcess, RosClient, diagnostic_values, encode_rgb, has_stamp, send_until_received,
        stamp_message, wait_for_node_ready,
    )

    artifact = request.getfixturevalue(artifact_fixture)
    client = RosClient(NODE_DOMAIN_ID)
    node = NodeProcess(NODE_DOMAIN_ID, {"model_path": str(artifact), "publish_color": "always"})
    try:
        publisher = client.publisher(ImageMsg, "image")
        collectors = {topic: client.collect(ImageMsg, topic) for topic in NODE_OUTPUTS}
        diagnostics = client.collect(DiagnosticArray, "/diagnostics")
        wait_for_node_ready(node, publisher, list(collectors.values()))

        message = encode_rgb(read_frame(120, 160))
        stamp_message(message, 42, 7, "camera_optical")
        first = send_until_received(publisher, message, collectors[NODE_OUTPUTS[0]],
                                    has_stamp(42, 7))
        assert first is not None, f"no depth output; node log:\n{node.log()}"
        for topic, collector in collectors.items():
            received = collector.wait_for(has_stamp(42, 7))
            assert received is not None, f"no {topic} output; node log:\n{node.log()}"
            assert (received.height, received.width) == (120, 160)
            assert received.header.frame_id == "camera_optical"

        status = diagnostics.wait_for(lambda msg: diagnostic_values(msg) is not None)
        assert status is not None, "no /diagnostics message from the node"
        assert diagnostic_values(status)["backend"] == backend
    finally:
        node.close()
        client.close()
