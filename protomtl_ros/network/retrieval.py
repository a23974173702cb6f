"""Knowledge retrieval transformer: task tokens attend to themselves, then to prototypes."""

import torch
import torch.nn.functional as F
from torch import nn


class RetrievalBlock(nn.Module):
    """Pre-norm block: self-attention, cross-attention to the retrieved knowledge, MLP."""

    def __init__(self, channels: int, heads: int, mlp_ratio: float):
        super().__init__()
        hidden = int(channels * mlp_ratio)
        self.norm_self = nn.LayerNorm(channels)
        self.self_attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm_query = nn.LayerNorm(channels)
        self.norm_memory = nn.LayerNorm(channels)
        self.cross_attention = nn.MultiheadAttention(channels, heads, batch_first=True)
        self.norm_mlp = nn.LayerNorm(channels)
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.GELU(), nn.Linear(hidden, channels)
        )

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Refine tokens [N, L, C] with keys/values from memory [N, M, C]."""
        x = self.norm_self(tokens)
        tokens = tokens + self.self_attention(x, x, x, need_weights=False)[0]

        query = self.norm_query(tokens)
        keys = self.norm_memory(memory)
        tokens = tokens + self.cross_attention(query, keys, keys, need_weights=False)[0]

        return tokens + self.mlp(self.norm_mlp(tokens))


class KnowledgeRetrieval(nn.Module):
    """Refine each task feature f_t with the task-affinity feature f_ta = A . V (projected to C).

    Keys "pixels" use one f_ta token per token position. Keys "tokens" use the T prototypes
    scaled by the task's pooled affinity, which carries the same convex mix of prototypes at
    a fraction of the cost. At stride 16 the tokens are 2x average-pooled task features, and
    the refinement is upsampled and added back to the stride-8 feature.
    """

    def __init__(self, channels: int, prototype_dim: int, blocks: int, heads: int,
                 mlp_ratio: float, keys: str, stride: int):
        super().__init__()
        self.keys = keys
        self.pool = stride // 8
        self.knowledge_proj = nn.Linear(prototype_dim, channels)
        self.blocks = nn.ModuleList(
            RetrievalBlock(channels, heads, mlp_ratio) for _ in range(blocks)
        )

    def forward(self, task_feature: torch.Tensor, knowledge: torch.Tensor) -> torch.Tensor:
        """Return the refined task feature [B, C, h, w].

        `knowledge` is f_ta before projection: [B, d, h, w] for keys "pixels" or [B, T, d]
        for keys "tokens".
        """
        x = task_feature
        if self.pool > 1:
            x = F.avg_pool2d(x, self.pool, ceil_mode=True)
            if self.keys == "pixels":
                knowledge = F.avg_pool2d(knowledge, self.pool, ceil_mode=True)

        batch, channels, height, width = x.shape
        tokens = x.flatten(2).transpose(1, 2)
        if self.keys == "pixels":
            knowledge = knowledge.flatten(2).transpose(1, 2)
        memory = self.knowledge_proj(knowledge)

        refined = tokens
        for block in self.blocks:
            refined = block(refined, memory)

        delta = (refined - tokens).transpose(1, 2).reshape(batch, channels, height, width)
        if self.pool > 1:
            delta = F.interpolate(
                delta, size=task_feature.shape[-2:], mode="bilinear", align_corners=False
            )
        return task_feature + delta
