"""The Ray executor writes the same bytes as the local one (one module-scoped local Ray instance with 2 CPUs)."""

from __future__ import annotations

import shutil

import pytest

from tokfilter.annotate import annotate
from tokfilter.annotate.score import DEFAULT_LOADER
from tokfilter.testing import LOADER

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'tokfilter[ray]')")


@pytest.fixture(scope="module")
def ray_session():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


@pytest.mark.slow
def test_address_check_accepts_a_real_ray_cluster_and_refuses_a_silent_port(ray_session):
    import socket

    from tokfilter.annotate.executors import check_ray_address
    from tokfilter.errors import UserError

    check_ray_address(ray.get_runtime_context().gcs_address, timeout=5)  # the GCS of the running instance
    with socket.socket() as silent:  # accepts connections, never speaks
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        with pytest.raises(UserError, match="Ray address"):
            check_ray_address(f"127.0.0.1:{silent.getsockname()[1]}", timeout=1)


@pytest.mark.slow  # ~30 s on 2 shared cores, most of it Ray start-up
@pytest.mark.parametrize("which", ["standin", "bilm"])
def test_ray_two_workers_match_local_one_worker(ray_session, tmp_path, source_shards, which, request):
    if which == "bilm":  # the real tokfilter biLM through the default loader
        classifier_dir, loader = request.getfixturevalue("bilm_classifier"), DEFAULT_LOADER
    else:
        classifier_dir, loader = request.getfixturevalue("classifier_dir"), LOADER
    local, distributed = tmp_path / "local", tmp_path / "ray"
    shutil.copytree(source_shards, local)
    shutil.copytree(source_shards, distributed)
    a = annotate(classifier_dir, local, loader=loader, progress=False, executor="local", workers=1)
    b = annotate(classifier_dir, distributed, loader=loader, progress=False, executor="ray", workers=2)
    assert b["scored_shards"] == b["num_shards"] == a["num_shards"] >= 4
    files = sorted(p.name for p in local.glob("*.scores.forget.npy"))
    assert len(files) == a["num_shards"]
    for name in files:
        assert (local / name).read_bytes() == (distributed / name).read_bytes(), name
    # resumable under Ray too: a rerun skips everything
    assert annotate(classifier_dir, distributed, loader=loader, progress=False, executor="ray",
                    workers=2)["scored_shards"] == 0
