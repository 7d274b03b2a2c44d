"""The composed config's values, checked before anything is built: each value out of its range
is refused with one :class:`~ipe_lightning.errors.SettingError` naming the option as the user
writes it (``eval.scales``, ``predict.size``) and the values it takes.

The parts check their own arguments too, but deep inside a build (the data module, a test loader
after the training, the upsampling of the first image) and in words of their own (``tile must be a
positive number``); here every value is told at once, in the config's words. Torch-free, so
preflight (``sweep/preflight.py``) checks a sweep's jobs on the submitting host with the same
rules. An option a config does not have (a data node without ``scale_min``) is not checked.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ipe_lightning.configs import plain
from ipe_lightning.errors import SettingError

SCALES_EXAMPLE = "eval.scales=[2,3.5,[2,3]]"
SHAVE_RULES = ("scale", "scale_plus_6")  # data/eval_sets.py resolves them
CHANNELS = ("rgb", "y")
PRECISIONS = ("32", "bf16", "32-true", "fp32")  # predict.autocast reads these
DEVICES = ("auto", "cpu", "cuda", "cuda:<index>")
_UNSET = object()


def shown(value: Any) -> str:
    """``value`` as it would be written on the command line: ``48x``, ``[2, 3, [2]]``, ``nan``."""
    value = plain(value)
    return value if isinstance(value, str) else repr(value)


def is_whole(value: Any, minimum: int) -> bool:
    """Whether ``value`` is a whole number (``48``, ``48.0``; not ``True``, ``'48'``) >=
    ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value) and float(value).is_integer() and value >= minimum


def is_scale(value: Any, minimum: float = 1.0, above: bool = False) -> bool:
    """Whether ``value`` is a scale: a finite number >= ``minimum`` (> it with ``above``), or a
    pair ``[s_h, s_w]`` of them."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return len(value) == 2 and all(is_scale(v, minimum, above) for v in value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return math.isfinite(value) and (value > minimum if above else value >= minimum)


def _get(cfg: Any, key: str) -> Any:
    """The resolved value at ``key`` as plain Python; ``_UNSET`` where the config has none."""
    value = OmegaConf.select(cfg, key, default=_UNSET) if isinstance(cfg, DictConfig) else _UNSET
    return plain(value)


def require_whole(cfg: Any, key: str, minimum: int, nullable: bool = False) -> None:
    """Refuse ``key`` unless it is a whole number >= ``minimum`` (or null, with ``nullable``)."""
    value = _get(cfg, key)
    if value is _UNSET or (nullable and value is None) or is_whole(value, minimum):
        return
    null = " or null" if nullable else ""
    raise SettingError(f"{key}={shown(value)}: a whole number >= {minimum}{null}")


def require_choice(
    cfg: Any, key: str, choices: Sequence[str], shown_choices: str = "", named: str = ""
) -> None:
    """Refuse ``key`` (told as ``named``) unless it is one of ``choices``
    (``predict.precision=32``, read as a number, is ``"32"``)."""
    value = _get(cfg, key)
    if value is _UNSET or (isinstance(value, str | int) and str(value) in choices):
        return
    listed = shown_choices or " | ".join(choices)
    raise SettingError(f"{named or key}={shown(value)}: one of {listed}")


def check_scales(key: str, scales: Any) -> None:
    """``scales`` (the value of ``key``): a non-empty list of evaluation scales, each a finite
    number >= 1 (super-resolution upsamples) or a pair ``[s_h, s_w]`` of them."""
    allowed = (
        "a non-empty list of scales, each a finite number >= 1 or a pair [s_h, s_w] of them "
        f"({SCALES_EXAMPLE})"
    )
    entries = scales if isinstance(scales, list) else [scales]
    if bad := [scale for scale in entries if not is_scale(scale)]:
        raise SettingError(f"{key}={shown(scales)}: {bad[0]!r} is not a scale; {allowed}")
    if not isinstance(scales, list) or not scales:
        raise SettingError(f"{key}={shown(scales)}: {allowed}")


def check_shave(key: str, shave: Any) -> None:
    """``shave``: border pixels left out of the metrics, a whole number >= 0 or a rule."""
    if is_whole(shave, 0) or shave in SHAVE_RULES:
        return
    raise SettingError(
        f"{key}={shown(shave)}: a whole number of pixels >= 0, or one of "
        f"{' | '.join(SHAVE_RULES)} (ceil of the scale, that + 6)"
    )


def check_eval(cfg: Any) -> None:
    """Each evaluation set's scales, shave and channel, named as the user sets them:
    ``eval.scales`` (``eval.shave``, ``eval.channel``) where the set takes the ``eval`` node's,
    else ``eval.sets.<name>.scales`` (``eval=paper``'s DIV2K has scales of its own)."""
    sets = OmegaConf.select(cfg, "eval.sets", default=None)
    for name in sets if isinstance(sets, DictConfig) else ():
        if not isinstance(sets[name], DictConfig):
            continue
        try:
            for key, check in (("scales", check_scales), ("shave", check_shave)):
                if (value := _get(cfg, f"eval.sets.{name}.{key}")) is not _UNSET:
                    check(_option(sets[name], key, name), value)
            require_choice(
                cfg,
                f"eval.sets.{name}.channel",
                CHANNELS,
                named=_option(sets[name], "channel", name),
            )
        except SettingError as error:
            raise SettingError(f"eval set {name!r}: {error}") from None


def _option(spec: DictConfig, key: str, name: str) -> str:
    """``eval.<key>`` where set ``name`` takes it by interpolation, else its own option."""
    raw = OmegaConf.to_container(spec, resolve=False).get(key)
    return f"eval.{key}" if raw == f"${{eval.{key}}}" else f"eval.sets.{name}.{key}"


def check_data(cfg: Any) -> None:
    """The training data's amounts (whole numbers) and its range of scales."""
    for key in ("inp_size", "batch_size", "repeat", "val_repeat"):
        require_whole(cfg, f"data.{key}", 1)
    for key in ("sample_q", "val_first_k", "val_batch_size"):
        require_whole(cfg, f"data.{key}", 1, nullable=True)
    require_whole(cfg, "data.num_workers", 0)
    low, high = _get(cfg, "data.scale_min"), _get(cfg, "data.scale_max")
    if low is _UNSET or high is _UNSET:
        return
    for key, value in (("data.scale_min", low), ("data.scale_max", high)):
        if isinstance(value, list) or not is_scale(value, 0, above=True):
            raise SettingError(f"{key}={shown(value)}: a finite number > 0 (data.scale_max=4)")
    if low > high:
        raise SettingError(
            f"data.scale_min={shown(low)} data.scale_max={shown(high)}: training scales are drawn "
            "from [scale_min, scale_max], so scale_min <= scale_max (data.scale_min=1 "
            "data.scale_max=4)"
        )


def check_test(cfg: Any) -> None:
    """The ``test`` node: the query budget of whole-image upsampling and the example panels."""
    require_whole(cfg, "test.max_queries", 1)
    require_whole(cfg, "test.tile", 1, nullable=True)
    require_whole(cfg, "test.grid_band", 1, nullable=True)
    require_whole(cfg, "test.num_examples", 0)


def check_predict(cfg: Any) -> None:
    """``mode=predict``'s options: a checkpoint, an input, exactly one of ``predict.scale``
    (a number > 0 or ``[s_h, s_w]``) and ``predict.size`` (``[H, W]``), a device and a
    precision."""
    if not _get(cfg, "ckpt_path") or not _get(cfg, "predict.input"):
        raise SettingError(
            "mode=predict needs ckpt_path=<checkpoint> and predict.input=<image file or folder>"
        )
    scale, size = _get(cfg, "predict.scale"), _get(cfg, "predict.size")
    scale = None if scale is _UNSET else scale
    size = None if size is _UNSET else size
    if (scale is None) == (size is None):
        given = "both" if scale is not None else "neither"
        raise SettingError(
            f"mode=predict takes exactly one of predict.scale=<s or [s_h,s_w]> and "
            f"predict.size=[H,W]; {given} given"
        )
    if scale is not None and not is_scale(scale, 0, above=True):
        raise SettingError(
            f"predict.scale={shown(scale)}: a finite number > 0 or a pair [s_h, s_w] of them "
            "(predict.scale=2.5)"
        )
    if size is not None and not (
        isinstance(size, list) and len(size) == 2 and all(is_whole(n, 1) for n in size)
    ):
        raise SettingError(
            f"predict.size={shown(size)}: [H, W], two whole numbers of pixels >= 1 "
            "(predict.size=[480,640])"
        )
    require_choice(cfg, "predict.precision", PRECISIONS, "32 | bf16")
    device = _get(cfg, "predict.device")
    if device is not _UNSET and not _is_device(device):
        raise SettingError(f"predict.device={shown(device)}: one of {' | '.join(DEVICES)}")


def _is_device(device: Any) -> bool:
    if device in ("auto", "cpu", "cuda"):
        return True
    return isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit()


def check_values(cfg: Any) -> None:
    """Every value the job's mode reads: predict its ``predict`` options and the test budget;
    train and test the data, the evaluation sets and the test budget."""
    check_test(cfg)
    if _get(cfg, "mode") == "predict":
        check_predict(cfg)
        return
    check_data(cfg)
    check_eval(cfg)
