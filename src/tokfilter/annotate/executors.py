"""Executors: where the scoring block (`score.score_shard`) runs. They schedule shards, nothing else.

  local  one process (workers = 1) or a pool of `spawn`ed processes (workers > 1), one shard per task;
  ray    Ray tasks, at most `workers` in flight, each reserving `threads` CPUs (and one GPU with device "cuda").
         `ray.init(address=...)` joins an existing cluster (every node needs tokfilter installed and the shard
         directory at the same path, e.g. a shared filesystem); without an address a local Ray instance with workers x threads CPUs is started and shut
         down afterwards. If Ray is already initialised in this process it is reused as is.

Each executor calls `on_done(stats)` once per finished shard, in completion order (the caller sorts).
"""

from __future__ import annotations

import multiprocessing as mp
import socket
from collections.abc import Callable

from tokfilter.annotate.score import score_shard
from tokfilter.errors import UserError

EXECUTORS = ("local", "ray")
RAY_CONNECT_TIMEOUT = 5.0


def run_local(tasks: list[dict], workers: int, on_done: Callable[[dict], None]) -> None:
    """Run `score_shard(**task)` for each task here (workers <= 1) or in a pool of processes."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            on_done(score_shard(**task))
        return
    with mp.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        for stats in pool.imap_unordered(_score_task, tasks):
            on_done(stats)


def _score_task(task: dict) -> dict:
    return score_shard(**task)


def check_ray_address(address: str, timeout: float = RAY_CONNECT_TIMEOUT) -> None:
    """Fail fast (UserError) when a host:port Ray address does not accept connections within `timeout` seconds."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r} is not HOST:PORT, ray://HOST:PORT or 'auto'")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as err:
        raise UserError(f"Ray address {address} does not answer within {timeout:g} s ({err})") from None


def run_ray(tasks: list[dict], workers: int, on_done: Callable[[dict], None], address: str | None = None,
            threads: int = 1, gpus: float = 0) -> None:
    """Run `score_shard(**task)` as Ray tasks, at most `workers` at a time, each reserving `threads` CPUs and
    `gpus` GPUs."""
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install 'tokfilter[ray]'") from None
    started = False
    if not ray.is_initialized():
        if address:
            check_ray_address(address)
        try:
            if address:
                ray.init(address=address, log_to_driver=False, logging_level="ERROR")
            else:
                ray.init(num_cpus=workers * threads, include_dashboard=False, log_to_driver=False,
                         logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"cannot start or join Ray at {address or 'a new local instance'}: "
                            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
        started = True
    try:
        remote = ray.remote(num_cpus=threads, num_gpus=gpus, max_retries=1)(_score_task)
        queue, pending = list(tasks), []
        while queue or pending:
            while queue and len(pending) < workers:
                pending.append(remote.remote(queue.pop(0)))
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                try:
                    on_done(ray.get(ref))
                except ray.exceptions.RayTaskError as err:
                    if isinstance(err.cause, UserError):
                        raise UserError(str(err.cause)) from None
                    raise
    finally:
        if started:
            ray.shutdown()
