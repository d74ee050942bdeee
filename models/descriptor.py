"""The copy-detection descriptor network: a narrow ResNet, GeM pooling, a projection and
L2 normalisation (the SSCD recipe, scaled down to train from scratch on two CPU cores).

The trunk is ResNet's basic residual block, one per stage, with widths 24-48-96-192
instead of ResNet-18's 64-512: about 0.7 M parameters (under 3 MB of float32 weights),
fed 112x112 pixels.

This torch network is for training (`train.py`); descriptors are computed by its numpy
twin, `descriptor_numpy.NumpyDescriptor`, from the saved weights. Its config and
preprocessing come from there, so both see the same pixels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from ansim.models.descriptor_numpy import DescriptorConfig, normalised_pixels
from torch import nn


def preprocess(rgb: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 (H, W, 3) to a normalised (3, size, size) tensor (`normalised_pixels`)."""
    return torch.from_numpy(normalised_pixels(rgb, size)).permute(2, 0, 1)


class GeM(nn.Module):
    """Generalised-mean pooling with a learnable exponent (Radenovic et al.)."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(p))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.p.clamp(min=1.0)
        return x.clamp(min=self.eps).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


class ResidualBlock(nn.Module):
    """ResNet's basic block (two 3x3 convolutions and a shortcut; He et al. 2016), with
    torchvision's parameter names, so weights trained with its `BasicBlock` load as they
    are. Not imported from torchvision: importing it costs every process that loads the
    descriptor (each `ansim` command, each crawl worker) about 1.5 s, for this one class."""

    def __init__(
        self, channels: int, width: int, stride: int, downsample: nn.Module | None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, width, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += shortcut
        return self.relu(out)


def narrow_resnet(widths: tuple[int, ...], blocks: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(3, widths[0], 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(widths[0]),
        nn.ReLU(inplace=True),
    ]
    channels = widths[0]
    for width, count in zip(widths, blocks, strict=True):
        for block in range(count):
            stride = 2 if block == 0 else 1
            downsample = None
            if stride != 1 or channels != width:
                downsample = nn.Sequential(
                    nn.Conv2d(channels, width, 1, stride=stride, bias=False),
                    nn.BatchNorm2d(width),
                )
            layers.append(ResidualBlock(channels, width, stride, downsample))
            channels = width
    return nn.Sequential(*layers)


class CopyDescriptor(nn.Module):
    """Images (N, 3, H, W), normalised with MEAN/STD, to unit descriptors (N, dim)."""

    def __init__(self, config: DescriptorConfig = DescriptorConfig()) -> None:
        super().__init__()
        self.config = config
        self.trunk = narrow_resnet(config.widths, config.blocks)
        self.pool = GeM(config.gem_p)
        self.projection = nn.Linear(config.widths[-1], config.dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.pool(self.trunk(images))
        return F.normalize(self.projection(features), dim=1)


def save_weights(model: CopyDescriptor, path: str, recipe: dict[str, object]) -> None:
    """Weights plus the config and training recipe that made them, in one torch file."""
    torch.save(
        {
            "config": model.config.to_dict(),
            "state_dict": model.state_dict(),
            "recipe": recipe,
        },
        path,
    )


def load_weights(path: str) -> tuple[CopyDescriptor, dict[str, object]]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = CopyDescriptor(DescriptorConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    model.eval()
    return model, dict(payload.get("recipe") or {})
