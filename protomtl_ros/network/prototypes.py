"""Task prototypes and the cosine affinity between task features and prototypes."""

import torch
import torch.nn.functional as F
from torch import nn


class TaskPrototypes(nn.Module):
    """T learnable prototypes of dimension d and a shared per-pixel 1x1 projection to d."""

    def __init__(self, channels: int, num_tasks: int, dim: int, temperature: float):
        super().__init__()
        self.temperature = temperature
        self.project = nn.Conv2d(channels, dim, 1)
        self.prototypes = nn.Parameter(torch.randn(num_tasks, dim) / dim**0.5)

    def forward(self, task_feature: torch.Tensor) -> dict[str, torch.Tensor]:
        """Compare one task feature [B, C, h, w] with every prototype.

        Returns "affinity" [B, T, h, w] (per-pixel softmax over prototypes),
        "pooled_logits" [B, T] (cosine / temperature of the pooled projected feature) and
        "embedding" [B, d] (L2-normalised pooled projected feature).
        """
        projected = self.project(task_feature)
        prototypes = F.normalize(self.prototypes, dim=1)

        pixels = F.normalize(projected, dim=1)
        cosine = torch.einsum("bdhw,td->bthw", pixels, prototypes)
        affinity = torch.softmax(cosine / self.temperature, dim=1)

        embedding = F.normalize(projected.mean(dim=(2, 3)), dim=1)
        pooled_logits = embedding @ prototypes.t() / self.temperature
        return {"affinity": affinity, "pooled_logits": pooled_logits, "embedding": embedding}

    def retrieve(self, affinity: torch.Tensor) -> torch.Tensor:
        """Return the per-pixel affinity-weighted prototypes A . V [B, d, h, w]."""
        return torch.einsum("bthw,td->bdhw", affinity, self.prototypes)

    def retrieve_tokens(self, affinity: torch.Tensor) -> torch.Tensor:
        """Return the T prototypes scaled by the pooled affinity [B, T, d]."""
        pooled = affinity.mean(dim=(2, 3))
        return pooled.unsqueeze(-1) * self.prototypes.unsqueeze(0)
