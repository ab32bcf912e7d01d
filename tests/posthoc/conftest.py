"""Fixtures for the post-hoc tests: tiny trained demo models (built once per session), one torch thread per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from .robust_models import single_thread, tiny_models


@pytest.fixture(autouse=True)
def one_thread():
    """Models this small run fastest on one thread, and a second thread only adds contention on a shared machine."""
    with single_thread():
        yield


@pytest.fixture(scope="session")
def robust_models(tmp_path_factory) -> dict[str, Path]:
    """{"full": run dir trained on forget + retain + general, "filtered": without forget, "tokenizer": file}."""
    with single_thread():
        return tiny_models(tmp_path_factory.mktemp("robust"))
