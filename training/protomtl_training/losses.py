"""Training losses for partially annotated multi-task learning.

L = sum_i (T / n_i) * sum_t w_t * l_t(i) / B  +  tae_weight * L_TAE  +  akg_weight * L_AKG
    +  vq_weight * L_VQ

where l_t(i) is sample i's loss for task t (zero when the sample is not labelled for t or
has no valid pixel), n_i is the number of tasks labelled for sample i and T = 3. L_AKG =
TKE + TC needs no labels, so it applies to every task of every image.
"""

import torch
import torch.nn.functional as F

from protomtl_ros.network.tasks import IGNORE_INDEX, TASKS


class MultiTaskLoss:
    """Compute the named loss terms of one batch; "total" is the entry to back-propagate.

    The per-task entries ("semseg", "depth", "normals") are the mean unweighted task losses
    over the samples of the batch that carry that task's label (0 when none does).
    """

    def __init__(self, loss_config):
        self.config = loss_config
        self.weights = {
            "semseg": loss_config.semseg_weight,
            "depth": loss_config.depth_weight,
            "normals": loss_config.normals_weight,
        }

    def __call__(self, outputs: dict, batch: dict) -> dict:
        per_sample = {
            "semseg": semseg_loss(outputs["semseg"], batch["semseg"], batch["valid"]["semseg"]),
            "depth": depth_loss(outputs["depth"], batch["depth"], batch["valid"]["depth"]),
            "normals": normals_loss(outputs["normals"], batch["normals"],
                                    batch["valid"]["normals"], self.config.normals_loss),
        }
        labelled = batch["labelled"].to(outputs["depth"].dtype)
        scale = sample_scale(labelled, self.config.scale_by_labelled)

        terms = {}
        supervised = outputs["depth"].new_zeros(())
        for index, task in enumerate(TASKS):
            task_labelled = labelled[:, index]
            losses = per_sample[task] * task_labelled
            supervised = supervised + self.weights[task] * (scale * losses).mean()
            terms[task] = losses.sum().detach() / task_labelled.sum().clamp(min=1.0)

        total = supervised
        aux = outputs.get("aux") or {}
        if "reconstruction" in aux and self.config.tae_weight > 0:
            terms["tae"] = F.smooth_l1_loss(aux["reconstruction"].float(),
                                            batch["image"].float())
            total = total + self.config.tae_weight * terms["tae"]
        if "vq_loss" in aux:
            terms["vq"] = aux["vq_loss"].float()
            total = total + self.config.vq_weight * terms["vq"]
        if "affinity_logits" in aux:
            terms["tke"] = task_knowledge_loss(aux["affinity_logits"].float())
            terms["tc"] = task_contrast_loss(aux["task_embeddings"].float(),
                                             self.config.triplet_margin)
            total = total + self.config.akg_weight * (terms["tke"] + terms["tc"])

        terms["supervised"] = supervised
        terms["total"] = total
        return terms


def sample_scale(labelled: torch.Tensor, enabled: bool = True) -> torch.Tensor:
    """Return T / (number of labelled tasks) per sample, or 1 when disabled (0 labelled -> 0)."""
    if not enabled:
        return torch.ones_like(labelled[:, 0])
    count = labelled.sum(1)
    return torch.where(count > 0, labelled.shape[1] / count.clamp(min=1.0),
                       torch.zeros_like(count))


def semseg_loss(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Cross-entropy per sample [B], averaged over valid pixels; void (255) is ignored."""
    target = torch.where(valid, target, torch.full_like(target, IGNORE_INDEX))
    pixel = F.cross_entropy(logits.float(), target, ignore_index=IGNORE_INDEX,
                            reduction="none")
    return _masked_mean(pixel, valid)


def depth_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """L1 depth error per sample [B] in metres, over valid pixels only."""
    diff = pred[:, 0].float() - torch.nan_to_num(target[:, 0].float())
    pixel = torch.where(valid, diff.abs(), torch.zeros_like(diff))
    return _masked_mean(pixel, valid)


def normals_loss(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor,
                 kind: str = "l1") -> torch.Tensor:
    """Normal error per sample [B]: mean |pred - target| over channels, or 1 - cos."""
    target = torch.nan_to_num(target.float())
    pred = pred.float()
    if kind == "cosine":
        pixel = 1.0 - (pred * target).sum(1)
    else:
        pixel = (pred - target).abs().mean(1)
    pixel = torch.where(valid, pixel, torch.zeros_like(pixel))
    return _masked_mean(pixel, valid)


def task_knowledge_loss(affinity_logits: torch.Tensor) -> torch.Tensor:
    """TKE: cross-entropy of each task's prototype affinity [B,T,T] against its own index."""
    batch, num_tasks, _ = affinity_logits.shape
    target = torch.arange(num_tasks, device=affinity_logits.device).repeat(batch)
    return F.cross_entropy(affinity_logits.reshape(batch * num_tasks, num_tasks), target)


def task_contrast_loss(embeddings: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """TC: batch-all triplet loss over task embeddings [B,T,D] (L2-normalised).

    Anchor and positive are the same task in two different images; the negative is any
    embedding of another task in the batch. Distances are Euclidean. With one image in the
    batch there is no positive pair and the loss is zero.
    """
    batch, num_tasks, dim = embeddings.shape
    flat = embeddings.reshape(batch * num_tasks, dim)
    task = torch.arange(num_tasks, device=flat.device).repeat(batch)
    image = torch.arange(batch, device=flat.device).repeat_interleave(num_tasks)
    # The clamp keeps sqrt away from 0 on the diagonal, where its gradient is infinite.
    distance = (flat[:, None, :] - flat[None, :, :]).pow(2).sum(-1).clamp(min=1e-12).sqrt()

    same_task = task[:, None] == task[None, :]
    positive = same_task & (image[:, None] != image[None, :])
    negative = ~same_task
    # [anchor, positive, negative] hinge for every valid triplet.
    hinge = distance[:, :, None] - distance[:, None, :] + margin
    valid = positive[:, :, None] & negative[:, None, :]
    if not valid.any():
        return flat.sum() * 0.0
    return F.relu(hinge[valid]).mean()


def _masked_mean(pixel: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    # Sum over pixels / valid count, so an image without valid pixels gives exactly 0.
    valid = valid.to(pixel.dtype)
    total = (pixel * valid).flatten(1).sum(1)
    count = valid.flatten(1).sum(1)
    return total / count.clamp(min=1.0)
