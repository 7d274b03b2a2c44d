"""Fixtures of the figure tool's tests: the sweep tests' tiny data folders."""

from tests.sweep.conftest import tiny_data_root  # noqa: F401  (a fixture, shared)
