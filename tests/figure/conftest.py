"""Fixtures of the figure tool's tests: the tiny data tree is the session's (tests/conftest.py)."""
