"""Loss terms: masking, per-sample scaling, AKG terms and all-invalid targets."""

import pytest
import torch

from protomtl_training.config import LossConfig
from protomtl_training.losses import (MultiTaskLoss, depth_loss, sample_scale, semseg_loss,
                                      task_contrast_loss, task_knowledge_loss)

torch.set_num_threads(1)


def make_batch(batch=2, height=4, width=5, labelled=None, all_invalid=False):
    generator = torch.Generator().manual_seed(0)
    semseg = torch.randint(0, 3, (batch, height, width), generator=generator)
    depth = torch.rand(batch, 1, height, width, generator=generator) + 0.5
    normals = torch.nn.functional.normalize(torch.randn(batch, 3, height, width,
                                                        generator=generator), dim=1)
    valid_value = not all_invalid
    valid = {task: torch.full((batch, height, width), valid_value)
             for task in ("semseg", "depth", "normals")}
    if labelled is None:
        labelled = torch.ones(batch, 3)
    return {"image": torch.randn(batch, 3, height, width, generator=generator),
            "semseg": semseg, "depth": depth, "normals": normals, "valid": valid,
            "labelled": labelled}


def make_outputs(batch):
    size = batch["depth"].shape
    generator = torch.Generator().manual_seed(1)
    return {
        "semseg": torch.randn(size[0], 3, *size[2:], generator=generator, requires_grad=True),
        "depth": torch.rand(size, generator=generator).requires_grad_(),
        "normals": torch.randn(size[0], 3, *size[2:], generator=generator,
                               requires_grad=True),
    }


def test_all_invalid_targets_zero_loss_and_gradient():
    batch = make_batch(all_invalid=True)
    batch["depth"][:] = float("nan")
    outputs = make_outputs(batch)
    terms = MultiTaskLoss(LossConfig())(outputs, batch)
    terms["total"].backward()
    assert terms["total"].item() == 0.0
    for name in ("semseg", "depth", "normals"):
        gradient = outputs[name].grad
        assert torch.isfinite(gradient).all(), name
        assert gradient.abs().max().item() == 0.0, name


def test_unlabelled_task_has_no_gradient():
    labelled = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    batch = make_batch(labelled=labelled)
    outputs = make_outputs(batch)
    MultiTaskLoss(LossConfig())(outputs, batch)["total"].backward()
    assert outputs["semseg"].grad.abs().max().item() == 0.0
    assert outputs["normals"].grad.abs().max().item() == 0.0
    assert outputs["depth"].grad.abs().max().item() > 0.0


def test_sample_scale_is_tasks_over_labelled():
    labelled = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0],
                             [0.0, 0.0, 0.0]])
    scale = sample_scale(labelled)
    assert scale.tolist() == pytest.approx([3.0, 1.5, 1.0, 0.0])


def test_supervised_loss_scaled_per_sample():
    labelled = torch.tensor([[0.0, 1.0, 0.0]])
    batch = make_batch(batch=1, labelled=labelled)
    outputs = make_outputs(batch)
    terms = MultiTaskLoss(LossConfig())(outputs, batch)
    expected = 3.0 * depth_loss(outputs["depth"], batch["depth"], batch["valid"]["depth"])
    assert terms["supervised"].item() == pytest.approx(expected.item())
    assert terms["semseg"].item() == 0.0


def test_semseg_loss_ignores_void():
    logits = torch.zeros(1, 3, 1, 2)
    logits[0, 0, 0, 0] = 10.0
    target = torch.tensor([[[0, 255]]])
    loss = semseg_loss(logits, target, target != 255)
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(
        logits[..., :1], target[..., :1]).item())


def test_depth_loss_mean_over_valid_pixels():
    pred = torch.tensor([[[[1.0, 2.0, 5.0]]]])
    target = torch.tensor([[[[2.0, 2.0, 0.0]]]])
    loss = depth_loss(pred, target, target[:, 0] > 0)
    assert loss.item() == pytest.approx(0.5)


def test_task_knowledge_loss_prefers_own_prototype():
    right = torch.eye(3).expand(2, 3, 3) * 10.0
    wrong = torch.eye(3)[[1, 2, 0]].expand(2, 3, 3) * 10.0
    assert task_knowledge_loss(right).item() < 1e-3
    assert task_knowledge_loss(wrong).item() > 5.0


def test_task_contrast_loss_margin():
    separated = torch.eye(3).expand(2, 3, 3).clone()
    assert task_contrast_loss(separated, margin=0.3).item() == 0.0
    collapsed = torch.ones(2, 3, 3) / 3 ** 0.5
    assert task_contrast_loss(collapsed, margin=0.3).item() == pytest.approx(0.3, abs=1e-5)
    single = torch.eye(3)[None]
    assert task_contrast_loss(single).item() == 0.0


def test_aux_terms_added_to_total():
    batch = make_batch()
    outputs = make_outputs(batch)
    outputs["aux"] = {
        "reconstruction": batch["image"] + 1.0,
        "vq_loss": torch.tensor(0.25),
        "affinity_logits": torch.eye(3).expand(2, 3, 3) * 10.0,
        "task_embeddings": torch.eye(3).expand(2, 3, 3),
    }
    terms = MultiTaskLoss(LossConfig())(outputs, batch)
    # SmoothL1 of a constant error 1.0 with beta 1 is 0.5.
    assert terms["tae"].item() == pytest.approx(0.5)
    assert terms["vq"].item() == pytest.approx(0.25)
    expected = (terms["supervised"] + terms["tae"] + terms["vq"] + terms["tke"]
                + terms["tc"]).item()
    assert terms["total"].item() == pytest.approx(expected)
