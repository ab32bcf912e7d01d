"""Fixtures for the reliability suite: the good inputs the bad-input cases start from (built once per session)."""

from __future__ import annotations

import pytest

from .bad_input_cases import build_env


@pytest.fixture(scope="session")
def env(tmp_path_factory) -> dict:
    return build_env(tmp_path_factory.mktemp("reliability-env"))
