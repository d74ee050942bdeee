"""The copy-detection descriptor network at inference, in numpy: the same vectors as the
torch network of `descriptor.py` (to float32 rounding), without importing torch, which
costs every process that describes an image about a second of CPU.

Its config and preprocessing live here, and `descriptor.py` (training) takes them from here,
so both networks see the same pixels. Each BatchNorm is folded into its convolution when the
weights load; a convolution is one float32 matrix product over its patches (im2col), on
channels-last arrays, so a layer's output is the next layer's input as it is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

# ImageNet statistics: the usual choice; the network learns from scratch either way.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
# torch's BatchNorm2d and GeM defaults, which the trained weights were made with.
BATCH_NORM_EPS = 1e-5
GEM_EPS = 1e-6
# The stem's 3x3 convolution and the first block of each stage halve the resolution.
STRIDE = 2


@dataclass(frozen=True)
class DescriptorConfig:
    widths: tuple[int, ...] = (24, 48, 96, 192)
    blocks: tuple[int, ...] = (1, 1, 1, 1)
    dim: int = 128
    input_size: int = 112
    gem_p: float = 3.0
    extra: dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> DescriptorConfig:
        return cls(
            widths=tuple(data["widths"]),  # type: ignore[arg-type]
            blocks=tuple(data["blocks"]),  # type: ignore[arg-type]
            dim=int(data["dim"]),  # type: ignore[arg-type]
            input_size=int(data["input_size"]),  # type: ignore[arg-type]
            gem_p=float(data["gem_p"]),  # type: ignore[arg-type]
            extra=dict(data.get("extra") or {}),  # type: ignore[arg-type]
        )


def normalised_pixels(rgb: np.ndarray, size: int) -> np.ndarray:
    """RGB uint8 (H, W, 3) to float32 (size, size, 3), scaled to [0, 1] and normalised with
    MEAN/STD.

    The frame is squashed, not cropped: a copy keeps its whole frame, and crops or pads are
    exactly what the network learned to see through.
    """
    from PIL import Image

    resized = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR), np.float32)
    mean = np.array(MEAN, np.float32)
    std = np.array(STD, np.float32)
    return (resized / 255.0 - mean) / std


@dataclass(frozen=True)
class Convolution:
    """A convolution with its BatchNorm folded in: patches (rows, size * size * in) times
    `weights` (size * size * in, out), plus `bias`."""

    weights: np.ndarray
    bias: np.ndarray
    size: int
    stride: int

    @classmethod
    def folded(cls, state: dict[str, np.ndarray], conv: str, norm: str, stride: int) -> Convolution:
        """The state dict's convolution `conv` (no bias) followed by BatchNorm `norm`, in
        eval mode: scale = weight / sqrt(running_var + eps) multiplies the kernel, and
        bias - running_mean * scale is the bias. Folded in float64, stored in float32."""
        kernel = state[f"{conv}.weight"].astype(np.float64)
        variance = state[f"{norm}.running_var"].astype(np.float64)
        scale = state[f"{norm}.weight"] / np.sqrt(variance + BATCH_NORM_EPS)
        bias = state[f"{norm}.bias"] - state[f"{norm}.running_mean"] * scale
        out_channels, in_channels, size, _ = kernel.shape
        # (out, in, kh, kw) to (kh, kw, in) rows, the order of a channels-last patch.
        weights = (kernel * scale[:, None, None, None]).transpose(2, 3, 1, 0)
        return cls(
            np.ascontiguousarray(
                weights.reshape(size * size * in_channels, out_channels), np.float32
            ),
            bias.astype(np.float32),
            size,
            stride,
        )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(n, h, w, in) to (n, h', w', out); a 3x3 kernel sees one pixel of zero padding."""
        if self.size == 1:
            patches = images[:, :: self.stride, :: self.stride]
        else:
            patches = _patches(images, self.size, self.stride)
        count, height, width = patches.shape[:3]
        rows = patches.reshape(count * height * width, -1)
        out = rows @ self.weights
        out += self.bias
        return out.reshape(count, height, width, -1)


def _patches(images: np.ndarray, size: int, stride: int) -> np.ndarray:
    """(n, h, w, c) to a view (n, h', w', size, size, c) of the zero-padded images' patches."""
    pad = size // 2
    count, height, width, channels = images.shape
    padded = np.zeros((count, height + 2 * pad, width + 2 * pad, channels), np.float32)
    padded[:, pad : pad + height, pad : pad + width] = images
    out_height = (height + 2 * pad - size) // stride + 1
    out_width = (width + 2 * pad - size) // stride + 1
    step_n, step_h, step_w, step_c = padded.strides
    return as_strided(
        padded,
        shape=(count, out_height, out_width, size, size, channels),
        strides=(step_n, step_h * stride, step_w * stride, step_h, step_w, step_c),
        writeable=False,
    )


def _relu(values: np.ndarray) -> np.ndarray:
    return np.maximum(values, 0.0, out=values)


@dataclass(frozen=True)
class ResidualBlock:
    """ResNet's basic block: relu(conv2(relu(conv1(x))) + shortcut(x))."""

    conv1: Convolution
    conv2: Convolution
    downsample: Convolution | None

    def __call__(self, images: np.ndarray) -> np.ndarray:
        shortcut = images if self.downsample is None else self.downsample(images)
        out = self.conv2(_relu(self.conv1(images)))
        out += shortcut
        return _relu(out)


class NumpyDescriptor:
    """The trained `descriptor.CopyDescriptor`, from its `torch.save` payload as
    `torch_file.read_torch_file` reads it: images in, unit descriptors out."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.config = DescriptorConfig.from_dict(payload["config"])
        state = payload["state_dict"]
        self.stem = Convolution.folded(state, "trunk.0", "trunk.1", STRIDE)
        self.blocks: list[ResidualBlock] = []
        # The trunk is a Sequential: conv, bn, relu (0-2), then the blocks of every stage.
        layer = 3
        for count in self.config.blocks:
            for block in range(count):
                stride = STRIDE if block == 0 else 1
                name = f"trunk.{layer}"
                downsample = None
                if f"{name}.downsample.0.weight" in state:
                    downsample = Convolution.folded(
                        state, f"{name}.downsample.0", f"{name}.downsample.1", stride
                    )
                self.blocks.append(
                    ResidualBlock(
                        Convolution.folded(state, f"{name}.conv1", f"{name}.bn1", stride),
                        Convolution.folded(state, f"{name}.conv2", f"{name}.bn2", 1),
                        downsample,
                    )
                )
                layer += 1
        self.gem_p = np.float32(max(float(state["pool.p"]), 1.0))
        self.projection = np.ascontiguousarray(state["projection.weight"].T, np.float32)
        self.projection_bias = state["projection.bias"].astype(np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Normalised images (n, size, size, 3) float32 to (n, dim) float32 unit vectors."""
        features = _relu(self.stem(images))
        for block in self.blocks:
            features = block(features)
        # GeM: the mean of each channel's values to the power p, to the power 1/p.
        powered = np.power(np.maximum(features, GEM_EPS), self.gem_p)
        pooled = np.power(powered.mean(axis=(1, 2), dtype=np.float32), 1 / self.gem_p)
        projected = pooled @ self.projection + self.projection_bias
        norms = np.linalg.norm(projected, axis=1, keepdims=True)
        return projected / np.maximum(norms, 1e-12)

    def describe(self, images: list[np.ndarray]) -> np.ndarray:
        """(n, dim) float32 unit vectors for RGB uint8 images (H, W, 3)."""
        size = self.config.input_size
        if not images:
            return np.zeros((0, self.config.dim), np.float32)
        return self(np.stack([normalised_pixels(rgb, size) for rgb in images]))
