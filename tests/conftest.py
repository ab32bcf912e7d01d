"""Shared fixtures: the real data beside the repository (../shared/data), skipped with a reason when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TOKFILTER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ../shared/data (real corpora, lexicons, MCQ files); skips the test when it is not there."""
    if not (SHARED_DATA / "corpora").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set TOKFILTER_SHARED_DATA or clone with ../shared)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(autouse=True, scope="session")
def _quiet_threads():
    """Tests share 2 cores; keep torch from oversubscribing them."""
    try:
        import torch

        torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    except ImportError:
        pass
    yield


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,1000"]


@pytest.fixture(scope="session")
def run_chromium():
    """A function running headless Chromium with the given arguments; skips when Chromium is not installed."""
    import shutil
    import subprocess
    import tempfile

    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)),
                  None)
    if binary is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install -y chromium)")

    def run(*args: str) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as profile:
            return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                                  capture_output=True, text=True, timeout=120)

    return run
