"""Fixtures of the sweep tool's tests: the tiny data tree, the decoded-image cache and the
finished Table 4 sweep are the session's (tests/conftest.py)."""
