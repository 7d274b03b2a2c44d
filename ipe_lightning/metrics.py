"""PSNR and SSIM under the super-resolution evaluation protocol (docs/method.md §4).

The protocol is the LIIF test code's, which follows EDSR/BasicSR:

- DIV2K: RGB, ``shave = scale + 6`` pixels from each border;
- benchmarks (Set5, Set14, B100, Urban100): Y channel, ``shave = scale``;
- Y is ITU-R BT.601 *studio swing* (MATLAB ``rgb2ycbcr``), not the full-range 0.299/0.587/0.114;
- data range 1, no rounding to 8 bits;
- the reported number is the **mean over images** of the per-image value, never the value of the
  pooled error.

The functions below are pure (tensors in, tensors out) and take ``(B, 3, H, W)`` float images in
``[0, 1]``. :class:`SRPSNR` and :class:`SRSSIM` are thin torchmetrics shells that accumulate the
per-image values so they synchronise across DDP ranks.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torchmetrics import Metric

Channel = Literal["rgb", "y"]

# ITU-R BT.601 studio swing, MATLAB rgb2ycbcr (docs/method.md §4): Y = (65.481 R + 128.553 G +
# 24.966 B) / 255 + 16 / 255 for R, G, B in [0, 1]; black -> 16/255, white -> 235/255.
_Y_WEIGHTS = (65.481 / 255, 128.553 / 255, 24.966 / 255)
_Y_OFFSET = 16 / 255

# Wang et al. 2004 (and MATLAB ssim_index, BasicSR): 11x11 Gaussian window, sigma 1.5,
# K1 = 0.01, K2 = 0.03.
SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03
DATA_RANGE = 1.0


def _check_images(image: torch.Tensor, name: str) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must be (B, 3, H, W) RGB, got shape {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {image.dtype}")


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    _check_images(sr, "sr")
    _check_images(hr, "hr")
    if sr.shape != hr.shape:
        raise ValueError(
            f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}"
        )


def rgb_to_y(image: torch.Tensor) -> torch.Tensor:
    """BT.601 studio-swing luma of ``(B, 3, H, W)`` RGB in ``[0, 1]``; returns ``(B, 1, H, W)``.

    The MATLAB ``rgb2ycbcr`` convention used by the EDSR/LIIF benchmark protocol; values lie in
    ``[16/255, 235/255]``.
    """
    _check_images(image, "image")
    weights = image.new_tensor(_Y_WEIGHTS).view(1, 3, 1, 1)
    return (image * weights).sum(dim=1, keepdim=True) + _Y_OFFSET


def shave_border(image: torch.Tensor, shave: int) -> torch.Tensor:
    """Drop ``shave`` pixels from each of the four borders of ``(..., H, W)``.

    LIIF test code: ``shave = scale`` for benchmarks, ``scale + 6`` for DIV2K.
    """
    if isinstance(shave, bool) or not isinstance(shave, int) or shave < 0:
        raise ValueError(f"shave must be a non-negative int, got {shave!r}")
    height, width = image.shape[-2:]
    if height - 2 * shave < 1 or width - 2 * shave < 1:
        raise ValueError(
            f"shave={shave} leaves no pixels of a {height}x{width} image "
            f"(needs height and width > {2 * shave})"
        )
    if shave == 0:
        return image
    return image[..., shave : height - shave, shave : width - shave]


def prepare(
    sr: torch.Tensor, hr: torch.Tensor, *, shave: int, channel: Channel
) -> tuple[torch.Tensor, torch.Tensor]:
    """The region and channel(s) the metrics are computed on: shave, then RGB or Y.

    Returns float64 ``(B, C, H - 2 shave, W - 2 shave)`` tensors with C = 3 for ``"rgb"`` and 1
    for ``"y"``: float32 SR output is measured without float32 rounding in the conversion. The
    conversion is per pixel, so shaving first gives the same values and converts fewer pixels.
    """
    _check_pair(sr, hr)
    if channel not in ("rgb", "y"):
        raise ValueError(f"channel must be 'rgb' or 'y', got {channel!r}")
    sr, hr = shave_border(sr, shave).double(), shave_border(hr, shave).double()
    if channel == "y":
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    return sr, hr


def psnr_per_image(
    sr: torch.Tensor, hr: torch.Tensor, *, shave: int, channel: Channel
) -> torch.Tensor:
    """PSNR of each image, ``-10 log10(MSE over the kept region)`` with data range 1; ``(B,)``.

    LIIF/EDSR benchmark protocol: Y channel with ``shave = scale`` on benchmarks, RGB with
    ``shave = scale + 6`` on DIV2K. Computed in float64; an exact match gives ``+inf``.
    """
    sr, hr = prepare(sr, hr, shave=shave, channel=channel)
    mse = (sr - hr).pow(2).mean(dim=(1, 2, 3))
    return -10 * torch.log10(mse / DATA_RANGE**2)


def gaussian_window(
    size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA, *, device=None, dtype=torch.float64
) -> torch.Tensor:
    """The normalised 1-D Gaussian taps whose outer product is the 2-D SSIM window.

    MATLAB ``fspecial('gaussian', 11, 1.5)`` is separable: its 2-D normalisation equals the
    product of the 1-D ones.
    """
    offsets = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return taps / taps.sum()


def _filter_valid(image: torch.Tensor, taps: torch.Tensor) -> torch.Tensor:
    """Depthwise separable Gaussian filter with no padding ('valid'): H, W shrink by len - 1."""
    channels = image.shape[1]
    size = taps.numel()
    rows = taps.view(1, 1, size, 1).expand(channels, 1, size, 1)
    cols = taps.view(1, 1, 1, size).expand(channels, 1, 1, size)
    return F.conv2d(F.conv2d(image, rows, groups=channels), cols, groups=channels)


def ssim_map(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Wang et al. 2004 SSIM map of ``(B, C, H, W)`` images, per channel, valid filtering.

    Returns ``(B, C, H - 10, W - 10)`` in float64: only positions whose whole 11x11 window lies
    inside the image (MATLAB ``ssim_index``, BasicSR), data range 1, population statistics.
    """
    if sr.shape != hr.shape or sr.dim() != 4:
        raise ValueError(
            f"ssim_map needs two (B, C, H, W) tensors of one shape, "
            f"got {tuple(sr.shape)} and {tuple(hr.shape)}"
        )
    height, width = sr.shape[-2:]
    if height < SSIM_WINDOW or width < SSIM_WINDOW:
        raise ValueError(
            f"SSIM needs at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels after shaving, "
            f"got {height}x{width}"
        )
    x, y = sr.double(), hr.double()
    taps = gaussian_window(device=x.device)
    mu_x, mu_y = _filter_valid(x, taps), _filter_valid(y, taps)
    var_x = _filter_valid(x * x, taps) - mu_x**2
    var_y = _filter_valid(y * y, taps) - mu_y**2
    cov_xy = _filter_valid(x * y, taps) - mu_x * mu_y
    c1 = (SSIM_K1 * DATA_RANGE) ** 2
    c2 = (SSIM_K2 * DATA_RANGE) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
    )


def ssim_per_image(
    sr: torch.Tensor, hr: torch.Tensor, *, shave: int, channel: Channel
) -> torch.Tensor:
    """SSIM of each image on the PSNR region and channel(s); ``(B,)`` in float64.

    LIIF/EDSR benchmark protocol (Y, ``shave = scale``; DIV2K RGB, ``shave = scale + 6``) with the
    Wang et al. 2004 window (11x11 Gaussian, sigma 1.5, K1 0.01, K2 0.03, valid filtering). RGB
    SSIM is the mean of the per-channel SSIM maps (docs/method.md §4).
    """
    sr, hr = prepare(sr, hr, shave=shave, channel=channel)
    return ssim_map(sr, hr).mean(dim=(1, 2, 3))


class _MeanOverImages(Metric):
    """Mean over images of a per-image metric, synchronised across DDP ranks.

    The states are the sum of per-image values and the image count, both reduced by ``sum``, so
    the result over ranks equals the result of one process seeing every image (docs/method.md §4:
    the reported number is the mean over images, not the metric of the pooled error).

    ``compute()`` on a metric that has seen no image returns ``nan`` (torchmetrics' convention for
    an empty mean, e.g. ``MeanMetric``; torchmetrics also warns that ``update`` was never called).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state(
            "total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum"
        )
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    @staticmethod
    def per_image(
        sr: torch.Tensor, hr: torch.Tensor, *, shave: int, channel: Channel
    ) -> torch.Tensor:
        raise NotImplementedError

    def update(
        self,
        sr: torch.Tensor,
        hr: torch.Tensor | None = None,
        *,
        shave: int = 0,
        channel: Channel = "rgb",
    ) -> None:
        """Add the images ``sr`` measured against ``hr``; or, with ``hr`` left out, per-image
        values already computed (the test step keeps them for its per-image results, so each
        image is measured once)."""
        values = sr if hr is None else self.per_image(sr, hr, shave=shave, channel=channel)
        self.total += values.detach().sum().to(self.total)
        self.count += values.numel()

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            return torch.tensor(float("nan"), dtype=torch.float64, device=self.total.device)
        return self.total / self.count


class SRPSNR(_MeanOverImages):
    """Mean over images of :func:`psnr_per_image` (dB)."""

    per_image = staticmethod(psnr_per_image)


class SRSSIM(_MeanOverImages):
    """Mean over images of :func:`ssim_per_image`."""

    per_image = staticmethod(ssim_per_image)
