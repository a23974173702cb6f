"""ResNet backbone whose four stage outputs are fused at stride 8 into the shared feature."""

import os

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

# Output channels of layer1..layer4 for each torchvision ResNet.
STAGE_CHANNELS = {
    "resnet18": (64, 128, 256, 512),
    "resnet34": (64, 128, 256, 512),
    "resnet50": (256, 512, 1024, 2048),
}

_IMAGENET_WEIGHTS = {
    "resnet18": "ResNet18_Weights",
    "resnet34": "ResNet34_Weights",
    "resnet50": "ResNet50_Weights",
}


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """Build a conv, batch norm and ReLU block that keeps the spatial size."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def build_resnet(name: str, pretrained: str | None) -> nn.Module:
    """Build a torchvision ResNet with random, ImageNet or local-file weights."""
    if pretrained == "imagenet":
        # May download into the torch hub cache when the weights are not there yet.
        weights_enum = getattr(torchvision.models, _IMAGENET_WEIGHTS[name])
        return getattr(torchvision.models, name)(weights=weights_enum.IMAGENET1K_V1)

    resnet = getattr(torchvision.models, name)(weights=None)
    if pretrained is None:
        return resnet

    if not os.path.isfile(pretrained):
        raise FileNotFoundError(
            f"pretrained backbone weights not found: {pretrained!r}; give the path to a "
            f"torchvision {name} state dict (.pth), 'imagenet', or null for random init"
        )

    state = torch.load(pretrained, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    missing, _ = resnet.load_state_dict(state, strict=False)
    missing = [key for key in missing if not key.startswith("fc.")]
    if missing:
        raise ValueError(
            f"{pretrained!r} is not a {name} state dict: {len(missing)} backbone weights are "
            f"missing, e.g. {missing[:3]}"
        )
    return resnet


class FusedBackbone(nn.Module):
    """ResNet stages resized to stride 8, concatenated and fused by a 3x3 conv to C channels."""

    def __init__(self, name: str, out_channels: int, pretrained: str | None = None):
        super().__init__()
        resnet = build_resnet(name, pretrained)
        self.stem = nn.Sequential(resnet.conv1, resnet.bn1, resnet.relu, resnet.maxpool)
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4
        self.fuse = conv_bn_relu(sum(STAGE_CHANNELS[name]), out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the shared feature f_e [B, C, H/8, W/8]."""
        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        c4 = self.layer4(c3)

        size = c2.shape[-2:]
        stages = [c2]
        for feature in (c1, c3, c4):
            stages.append(F.interpolate(feature, size=size, mode="bilinear", align_corners=False))
        return self.fuse(torch.cat(stages, dim=1))
