"""Vector quantisation of the shared feature with a learnable codebook."""

import torch
import torch.nn.functional as F
from torch import nn


class VectorQuantizer(nn.Module):
    """Replace each spatial feature by its nearest codebook entry (straight-through gradient).

    Mode "loss" learns the codebook with codebook + beta * commitment losses. Mode "ema"
    updates the codebook with exponential moving averages of the assigned features during
    training and reports a zero loss.
    """

    def __init__(self, channels: int, codebook_size: int, code_dim: int, mode: str = "loss",
                 beta: float = 0.25, ema_decay: float = 0.99):
        super().__init__()
        self.mode = mode
        self.beta = beta
        self.ema_decay = ema_decay
        self.project_in = nn.Conv2d(channels, code_dim, 1) if channels != code_dim else None
        self.project_out = nn.Conv2d(code_dim, channels, 1) if channels != code_dim else None

        codebook = torch.empty(codebook_size, code_dim).uniform_(
            -1.0 / codebook_size, 1.0 / codebook_size
        )
        self.codebook = nn.Parameter(codebook, requires_grad=(mode == "loss"))
        if mode == "ema":
            self.register_buffer("ema_cluster_size", torch.zeros(codebook_size))
            self.register_buffer("ema_embed_sum", codebook.clone())

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (f_q [B, C, h, w] in the input space, vq_loss scalar)."""
        z = self.project_in(features) if self.project_in is not None else features
        batch, dim, height, width = z.shape
        flat = z.permute(0, 2, 3, 1).reshape(-1, dim)

        # Squared distances |z|^2 - 2 z.e + |e|^2; computed in fp32 for a stable argmin.
        codebook = self.codebook.float()
        flat32 = flat.float()
        distances = (
            flat32.pow(2).sum(dim=1, keepdim=True)
            - 2.0 * flat32 @ codebook.t()
            + codebook.pow(2).sum(dim=1)
        )
        indices = distances.argmin(dim=1)
        quantized = F.embedding(indices, self.codebook).to(flat.dtype)

        loss = flat.new_zeros(())
        if self.training:
            if self.mode == "loss":
                codebook_loss = F.mse_loss(quantized, flat.detach())
                commitment_loss = F.mse_loss(flat, quantized.detach())
                loss = codebook_loss + self.beta * commitment_loss
            else:
                self._ema_update(flat.detach(), indices)
            quantized = flat + (quantized - flat).detach()

        quantized = quantized.reshape(batch, height, width, dim).permute(0, 3, 1, 2)
        if self.project_out is not None:
            quantized = self.project_out(quantized)
        return quantized, loss

    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, indices: torch.Tensor):
        one_hot = F.one_hot(indices, self.codebook.shape[0]).type(flat.dtype)
        decay = self.ema_decay
        self.ema_cluster_size.mul_(decay).add_(one_hot.sum(dim=0), alpha=1.0 - decay)
        self.ema_embed_sum.mul_(decay).add_(one_hot.t() @ flat, alpha=1.0 - decay)

        # Laplace smoothing keeps entries that were never assigned from dividing by zero.
        total = self.ema_cluster_size.sum()
        count = self.codebook.shape[0]
        smoothed = (self.ema_cluster_size + 1e-5) / (total + count * 1e-5) * total
        self.codebook.copy_(self.ema_embed_sum / smoothed.unsqueeze(1))
