"""The one mixed-precision policy of training, validation and evaluation: bf16 autocast on a GPU
(weights and optimizer state stay float32), float32 on a CPU."""

from __future__ import annotations

import contextlib

import torch


def autocast(device: torch.device):
    """A context manager for forward passes on `device`."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
