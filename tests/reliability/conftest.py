"""Fixtures for the reliability suite: the good inputs the bad-input cases start from (built once per session)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)


@pytest.fixture(scope="session")
def env(tmp_path_factory) -> dict:
    from bad_input_cases import build_env

    return build_env(tmp_path_factory.mktemp("reliability-env"))
