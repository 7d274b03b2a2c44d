"""The bicubic baseline every report carries: Pillow bicubic upsampling (docs/method.md §4)."""

from __future__ import annotations

import numpy as np
import torch

from ipe_lightning.data.degrade import resize_bicubic


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """An image in ``[0, 1]`` as the 8-bit array a PNG file stores: ``(C, H, W)``, or a batch of
    one ``(1, C, H, W)``, → ``(H, W, C)`` uint8. Values are scaled by 255, rounded to the nearest
    level (ties to even) and clipped to ``[0, 255]``, so anything outside ``[0, 1]`` becomes 0 or
    255."""
    if image.dim() == 4 and image.shape[0] == 1:
        image = image[0]
    if image.dim() != 3:
        raise ValueError(
            f"to_uint8 takes one (C, H, W) image or a batch of one, got shape {tuple(image.shape)}"
        )
    return (
        (image.detach().float().cpu().permute(1, 2, 0).numpy() * 255)
        .round()
        .clip(0, 255)
        .astype(np.uint8)
    )


def bicubic_upsample(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Pillow bicubic resize of ``(B, 3, h, w)`` in ``[0, 1]`` to ``(B, 3, H, W)``.

    Evaluation LRs are 8-bit images, so the round trip through uint8 is exact and Pillow sees the
    same uint8 image as the protocol's LR generation does.
    """
    resized = [torch.from_numpy(resize_bicubic(to_uint8(item), size).copy()) for item in image]
    return torch.stack(resized).permute(0, 3, 1, 2).to(device=image.device, dtype=image.dtype) / 255
