"""Stateless tensor ops that bk lowers to ``call_function`` (names as in the spec, so the generated
graph code reads like the spec)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def relu(x: torch.Tensor) -> torch.Tensor:
    return F.relu(x)


def gelu(x: torch.Tensor) -> torch.Tensor:
    return F.gelu(x)


def silu(x: torch.Tensor) -> torch.Tensor:
    return F.silu(x)


def elu(x: torch.Tensor) -> torch.Tensor:
    return F.elu(x)


def tanh(x: torch.Tensor) -> torch.Tensor:
    return torch.tanh(x)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(x)


def softplus(x: torch.Tensor) -> torch.Tensor:
    return F.softplus(x)


def upsample(x: torch.Tensor, scale: int = 2, mode: str = "nearest") -> torch.Tensor:
    """Nearest (or bilinear) upsampling of the last two axes by ``scale`` (no transposed convolution)."""
    return F.interpolate(x, scale_factor=scale, mode=mode)


def flatten(x: torch.Tensor, start: int = 1) -> torch.Tensor:
    return torch.flatten(x, start_dim=start)


def reshape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return x.reshape(x.shape[0], *shape)


def global_mean(x: torch.Tensor) -> torch.Tensor:
    """Mean over the spatial axes of [B, C, H, W] → [B, C]."""
    return x.mean(dim=(-2, -1))


def squeeze_last(x: torch.Tensor) -> torch.Tensor:
    return x.squeeze(-1)


def magnitude(x: torch.Tensor) -> torch.Tensor:
    """|x| (complex modulus for complex input)."""
    return x.abs()
