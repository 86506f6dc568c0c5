"""The Ray runtime for sweeps: start local Ray (loopback only, no dashboard, no telemetry) or attach to a cluster.

Ray reads a few switches only from the environment of the process that starts it (its local processes inherit them):
no usage reporting, and bind loopback even on a machine with another address. They are set for the duration of
``ray.init`` and restored right after, so nothing leaks into the rest of the process.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

RAY_START_ENV: dict[str, str] = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    previous = {name: os.environ.pop(name, None) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def ray_session(address: str, num_cpus: int, num_gpus: int | None = None) -> Iterator[float]:
    """Start local Ray (loopback only, no dashboard, no telemetry) or connect to ``address``; yields start-up seconds.

    A session that is already initialised is reused and left running (its owner shuts it down).
    """
    import ray

    if ray.is_initialized():
        yield 0.0
        return
    started = time.perf_counter()
    with _environment(RAY_START_ENV):
        _init(ray, address, num_cpus, num_gpus)
    try:
        yield time.perf_counter() - started
    finally:
        ray.shutdown()


def _init(ray: object, address: str, num_cpus: int, num_gpus: int | None) -> None:
    if address == "local":
        ray.init(  # type: ignore[attr-defined]
            address="local",
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
            runtime_env={"worker_process_setup_hook": "mlops_assets.lib.ray_runtime.warm_worker"},
        )
    elif address.startswith("ray://"):
        _connect_client(ray, address)
    else:
        ray.init(address=address, log_to_driver=False, configure_logging=False)


# The Ray Client server starts a server process per connection; when that process dies at start ("Initialization
# failure from server ... ZombieProcess", seen once in the first four connections of the tests on a 2-core machine),
# the connection is refused whole, and a new one can succeed.
CLIENT_CONNECT_ATTEMPTS = 3
CLIENT_RETRY_WAIT_S = 2.0


def _connect_client(ray: object, address: str) -> None:
    for attempt in range(1, CLIENT_CONNECT_ATTEMPTS + 1):
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)  # type: ignore[attr-defined]
            return
        except ConnectionAbortedError:
            ray.shutdown()  # type: ignore[attr-defined]
            if attempt == CLIENT_CONNECT_ATTEMPTS:
                raise
            time.sleep(CLIENT_RETRY_WAIT_S * attempt)


def warm_worker() -> None:
    """Runs in each Ray worker as it starts (idle workers start with Ray): pays the trial's imports off the critical
    path, so a trial actor that takes a pre-started worker begins training at once."""
    import ray.tune  # noqa: F401
