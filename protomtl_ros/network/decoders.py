"""Task decoders, prediction heads and the image reconstruction decoder."""

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.resnet import BasicBlock

from .backbone import conv_bn_relu


class TaskDecoder(nn.Sequential):
    """Residual basic blocks that turn the shared feature into one task's feature f_t."""

    def __init__(self, channels: int, blocks: int):
        super().__init__(*[BasicBlock(channels, channels) for _ in range(blocks)])


class TaskHeads(nn.Module):
    """Segmentation logits, depth in metres and unit normals, upsampled to the input size.

    Depth is max_depth_m * sigmoid(logit): non-negative and bounded by max_depth_m.
    """

    def __init__(self, channels: int, num_classes: int, max_depth_m: float):
        super().__init__()
        self.max_depth_m = max_depth_m
        self.semseg = self._head(channels, num_classes)
        self.depth = self._head(channels, 1)
        self.normals = self._head(channels, 3)

    @staticmethod
    def _head(channels: int, out_channels: int) -> nn.Sequential:
        return nn.Sequential(
            conv_bn_relu(channels, channels), nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, features: dict[str, torch.Tensor], size) -> dict[str, torch.Tensor]:
        """Map each task feature to its prediction at `size` (H, W)."""
        semseg = _upsample(self.semseg(features["semseg"]), size)
        depth = self.max_depth_m * torch.sigmoid(_upsample(self.depth(features["depth"]), size))
        normals = F.normalize(_upsample(self.normals(features["normals"]), size), dim=1, eps=1e-6)
        return {"semseg": semseg, "depth": depth, "normals": normals}


class ReconstructionDecoder(nn.Module):
    """Three x2 upsampling conv stages and an RGB conv: stride-8 feature to the input image."""

    def __init__(self, channels: int):
        super().__init__()
        widths = [channels, max(channels // 2, 16), max(channels // 4, 16), max(channels // 8, 16)]
        self.stages = nn.ModuleList(
            conv_bn_relu(widths[i], widths[i + 1]) for i in range(3)
        )
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, features: torch.Tensor, size) -> torch.Tensor:
        """Return the reconstruction [B, 3, H, W] in normalised-image space."""
        x = features
        for stage in self.stages:
            x = stage(F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False))
        return _upsample(self.to_rgb(x), size)


def _upsample(x: torch.Tensor, size) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
