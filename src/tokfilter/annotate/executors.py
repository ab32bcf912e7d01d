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


def run_local(tasks: list[dict], workers: int, on_done: Callable[[dict], None],
              on_tokens: Callable[[int], None] | None = None) -> None:
    """Run `score_shard(**task)` for each task here (workers <= 1; `on_tokens` then reports progress within a
    shard) or in a pool of processes."""
    if workers <= 1 or len(tasks) <= 1:
        for task in tasks:
            on_done(score_shard(**task, on_tokens=on_tokens))
        return
    with mp.get_context("spawn").Pool(min(workers, len(tasks))) as pool:
        for stats in pool.imap_unordered(_score_task, tasks):
            on_done(stats)


def _score_task(task: dict) -> dict:
    return score_shard(**task)


# HTTP/2 client preface + an empty SETTINGS frame: a gRPC server (Ray's GCS, the Ray Client server) answers with
# a SETTINGS frame of its own (frame type 0x04 in the 4th byte of the 9-byte frame header).
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def check_ray_address(address: str, timeout: float | None = None) -> None:
    """Fail fast (UserError) unless HOST:PORT (or ray://HOST:PORT) answers like a gRPC server within `timeout` s.

    `ray.init` itself waits a minute or more on an address that accepts connections but is not Ray."""
    if address in ("auto", "local"):
        return
    timeout = RAY_CONNECT_TIMEOUT if timeout is None else timeout
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"Ray address {address!r} is not HOST:PORT, ray://HOST:PORT or 'auto'")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_H2_PREFACE)
            header = sock.recv(9)
    except OSError as err:
        raise UserError(f"Ray address {address} does not answer within {timeout:g} s ({err})") from None
    if len(header) < 4 or header[3] != 0x04:
        raise UserError(f"Ray address {address} answers, but not like a Ray cluster (no gRPC handshake)")


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
