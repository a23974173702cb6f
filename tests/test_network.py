"""Tests of the network: config validation, output shapes and ranges, train-mode extras."""

import os

import pytest
import torch
import torchvision

from protomtl_ros.network import (
    InferenceGraph, ModelConfig, ProtoMTLNet, build_model, count_parameters,
)
from protomtl_ros.network import summary

torch.set_num_threads(1)

HEIGHT, WIDTH = 64, 96


def tiny(**overrides) -> ModelConfig:
    values = {"input_height": HEIGHT, "input_width": WIDTH, **overrides}
    return ModelConfig.for_size("tiny", **values)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return build_model(tiny()).eval()


@pytest.mark.parametrize("batch", [1, 4])
def test_eval_output_shapes(tiny_model, batch):
    with torch.no_grad():
        outputs = tiny_model(torch.randn(batch, 3, HEIGHT, WIDTH))
    assert set(outputs) == {"semseg", "depth", "normals"}
    assert outputs["semseg"].shape == (batch, 13, HEIGHT, WIDTH)
    assert outputs["depth"].shape == (batch, 1, HEIGHT, WIDTH)
    assert outputs["normals"].shape == (batch, 3, HEIGHT, WIDTH)


def test_eval_output_ranges(tiny_model):
    with torch.no_grad():
        outputs = tiny_model(torch.randn(2, 3, HEIGHT, WIDTH) * 3)
    depth = outputs["depth"]
    assert torch.isfinite(depth).all()
    assert depth.min() >= 0.0
    assert depth.max() <= tiny_model.config.max_depth_m
    length = outputs["normals"].norm(dim=1)
    assert torch.allclose(length, torch.ones_like(length), atol=1e-4)


def test_odd_input_size_keeps_shape(tiny_model):
    with torch.no_grad():
        outputs = tiny_model(torch.randn(1, 3, 70, 101))
    assert outputs["semseg"].shape[-2:] == (70, 101)
    assert outputs["depth"].shape[-2:] == (70, 101)
    assert outputs["normals"].shape[-2:] == (70, 101)


def test_train_mode_aux_outputs():
    model = build_model(tiny()).train()
    outputs = model(torch.randn(2, 3, HEIGHT, WIDTH))
    aux = outputs["aux"]
    assert set(aux) == {"reconstruction", "vq_loss", "affinity_logits", "task_embeddings"}
    assert aux["reconstruction"].shape == (2, 3, HEIGHT, WIDTH)
    assert aux["vq_loss"].dim() == 0
    assert aux["vq_loss"].item() > 0.0
    assert aux["affinity_logits"].shape == (2, 3, 3)
    assert aux["task_embeddings"].shape == (2, 3, 64)
    norms = aux["task_embeddings"].norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)


def test_affinity_logits_bounded_by_temperature():
    model = build_model(tiny()).train()
    logits = model(torch.randn(1, 3, HEIGHT, WIDTH))["aux"]["affinity_logits"]
    # Cosine lies in [-1, 1], so logits lie in [-1 / temperature, 1 / temperature].
    assert logits.abs().max().item() <= 1.0 / 0.1 + 1e-4


def test_gradients_reach_method_parts():
    model = build_model(tiny()).train()
    outputs = model(torch.randn(2, 3, HEIGHT, WIDTH))
    aux = outputs["aux"]
    loss = (outputs["semseg"].mean() + outputs["depth"].mean() + outputs["normals"].mean()
            + aux["vq_loss"] + aux["reconstruction"].abs().mean()
            + aux["affinity_logits"].logsumexp(-1).mean())
    loss.backward()
    assert model.quantizer.codebook.grad is not None
    assert model.prototypes.prototypes.grad is not None
    assert model.backbone.fuse[0].weight.grad.abs().sum() > 0
    assert model.retrieval.knowledge_proj.weight.grad.abs().sum() > 0


def test_ema_mode_updates_codebook():
    model = build_model(tiny(vq_mode="ema")).train()
    before = model.quantizer.codebook.detach().clone()
    outputs = model(torch.randn(2, 3, HEIGHT, WIDTH))
    assert outputs["aux"]["vq_loss"].item() == 0.0
    assert not model.quantizer.codebook.requires_grad
    assert not torch.equal(before, model.quantizer.codebook)


def test_tae_disabled_omits_reconstruction():
    model = build_model(tiny(tae_enabled=False)).train()
    aux = model(torch.randn(1, 3, HEIGHT, WIDTH))["aux"]
    assert "reconstruction" not in aux
    assert "vq_loss" in aux


@pytest.mark.parametrize("keys,stride", [("pixels", 8), ("pixels", 16), ("tokens", 8)])
def test_retrieval_variants_run(keys, stride):
    model = build_model(tiny(krt_keys=keys, krt_stride=stride)).eval()
    with torch.no_grad():
        outputs = model(torch.randn(1, 3, HEIGHT, WIDTH))
    assert outputs["depth"].shape == (1, 1, HEIGHT, WIDTH)
    assert torch.isfinite(outputs["semseg"]).all()


def test_plain_variant_has_no_method_parts():
    model = build_model(tiny(variant="plain")).train()
    outputs = model(torch.randn(2, 3, HEIGHT, WIDTH))
    assert outputs["aux"] == {}
    assert not isinstance(model, ProtoMTLNet)
    assert not hasattr(model, "quantizer")
    assert outputs["normals"].shape == (2, 3, HEIGHT, WIDTH)


def test_inference_graph_returns_tuple(tiny_model):
    graph = tiny_model.inference_graph()
    assert isinstance(graph, InferenceGraph)
    with torch.no_grad():
        outputs = graph(torch.randn(1, 3, HEIGHT, WIDTH))
    assert isinstance(outputs, tuple)
    assert len(outputs) == 3
    assert outputs[0].shape == (1, 13, HEIGHT, WIDTH)
    assert not graph.training


def test_config_rejects_unknown_key():
    with pytest.raises(ValueError, match="fused_chanels"):
        ModelConfig.from_dict({"size": "tiny", "fused_chanels": 64})


@pytest.mark.parametrize("field,value,accepted", [
    ("variant", "fancy", "plain"),
    ("backbone", "vgg16", "resnet50"),
    ("vq_mode", "gumbel", "ema"),
    ("krt_keys", "all", "pixels"),
    ("krt_stride", 4, "16"),
])
def test_config_invalid_choice_lists_accepted(field, value, accepted):
    with pytest.raises(ValueError) as error:
        tiny(**{field: value})
    assert repr(value) in str(error.value)
    assert accepted in str(error.value)


def test_config_invalid_values():
    with pytest.raises(ValueError, match="multiple of 32"):
        tiny(input_height=100)
    with pytest.raises(ValueError, match="divisible"):
        tiny(krt_heads=7)
    with pytest.raises(ValueError, match="depth range"):
        tiny(min_depth_m=5.0, max_depth_m=1.0)
    with pytest.raises(ValueError, match="num_classes"):
        tiny(num_classes=256)
    with pytest.raises(ValueError, match="size"):
        ModelConfig.for_size("huge")


def test_config_dict_round_trip():
    config = ModelConfig.for_size("small", vq_mode="ema")
    restored = ModelConfig.from_dict(config.to_dict())
    assert restored == config


def test_size_presets():
    paper = ModelConfig.for_size("paper")
    assert paper.fused_channels == 512
    assert paper.vq_codebook_size == 4096
    assert paper.vq_code_dim == 1024
    assert paper.prototype_dim == 1024
    assert ModelConfig.for_size("tiny").krt_stride == 16
    assert ModelConfig.for_size("small").krt_keys == "tokens"
    assert ModelConfig.from_dict({"size": "small"}).fused_channels == 128


def test_pretrained_from_local_file(tmp_path):
    reference = torchvision.models.resnet18(weights=None)
    path = tmp_path / "resnet18.pth"
    torch.save(reference.state_dict(), path)
    model = build_model(tiny(pretrained=str(path)))
    assert torch.equal(model.backbone.stem[0].weight, reference.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_pretrained_imagenet_from_cache():
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights.url))
    if not os.path.isfile(cached):
        pytest.skip(f"ImageNet ResNet-18 weights are not cached at {cached}; building the "
                    "model would download them")
    model = build_model(tiny(pretrained="imagenet"))
    reference = weights.get_state_dict(progress=False)
    assert torch.equal(model.backbone.stem[0].weight, reference["conv1.weight"])


def test_pretrained_missing_file(tmp_path):
    missing = tmp_path / "absent.pth"
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        build_model(tiny(pretrained=str(missing)))


def test_count_parameters_split():
    counts = count_parameters(tiny())
    assert counts["inference"] + counts["training_only"] == counts["total"]
    assert counts["training_only"] > 0
    assert count_parameters(tiny(variant="plain"))["training_only"] == 0
    assert count_parameters(tiny(variant="plain"))["total"] < counts["total"]


def test_summary_prints_three_sizes(capsys):
    summary.main([])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 4
    assert lines[1].startswith("tiny")
    assert lines[2].startswith("small")
    assert lines[3].startswith("paper")
