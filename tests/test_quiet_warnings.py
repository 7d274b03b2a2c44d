"""Warnings the reader can do nothing about stay off the console of a job; others pass."""

from __future__ import annotations

import warnings

from ipe_lightning.tasks import sampler_resumes_itself


def _warn(message: str, category: type[Warning], module: str) -> None:
    warnings.warn_explicit(message, category, filename=f"{module}.py", lineno=1, module=module)


def test_lightnings_pytree_deprecation_is_silenced_while_a_job_fits():
    """torch deprecates the LeafSpec that pytorch_lightning.utilities._pytree uses."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with sampler_resumes_itself():
            _warn(
                "`isinstance(treespec, LeafSpec)` is deprecated",
                FutureWarning,
                "pytorch_lightning.utilities._pytree",
            )
            _warn("something else is deprecated", FutureWarning, "ipe_lightning.module")
    assert [str(w.message) for w in caught] == ["something else is deprecated"]
