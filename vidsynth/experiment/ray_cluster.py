"""Running an experiment's jobs as Ray tasks: each asks for the cell's GPUs and CPUs; edits go where they were tuned.

Imported only with ``--ray``. The workers import VidSynth from the folder the driver imported it from (set as their
``PYTHONPATH``), and read and write the experiment folder: on a cluster, both must be on storage every
node sees at the same path (say an NFS mount), with the same Python environment on every node.
"""

import logging
import os
import socket
from collections.abc import Callable
from typing import Any

import ray
from ray.exceptions import RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from vidsynth.commands import child_env
from vidsynth.errors import VidSynthError
from vidsynth.experiment.cells import Outcome, run_job

GCS_PORT, CLIENT_PORT = 6379, 10001  # Ray's defaults: a cluster's address, and its ray:// client server
PROBE_SECONDS = 5.0


def check_address(address: str) -> None:
    """A cluster address (``HOST:PORT`` or ``ray://HOST:PORT``) must accept a connection within a few seconds.

    ``ray.init`` would otherwise try to reach it for minutes, printing only its own reconnect lines.
    ``local`` and ``auto`` name no address: Ray answers those at once.
    """
    if address in ("local", "auto"):
        return
    client = address.startswith("ray://")
    target = address.removeprefix("ray://")
    host, _, port = target.rpartition(":") if ":" in target.strip("[]") else (target, "", "")
    port = port or str(CLIENT_PORT if client else GCS_PORT)
    if not port.isdigit() or not host.strip("[]"):
        raise VidSynthError(
            f"--ray {address} is not an address. Pass HOST:PORT (e.g. 10.0.0.1:{GCS_PORT}), local or auto"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=PROBE_SECONDS):
            return
    except OSError as err:
        start = f"ray start --head --ray-client-server-port {port}" if client else f"ray start --head --port {port}"
        raise VidSynthError(
            f"no Ray cluster answers at {address} ({err.strerror or err}). Start one there with `{start}`, "
            "or use --ray local for Ray on this machine alone"
        ) from err


def _run_here(fn: Callable, *args) -> tuple[str, Outcome]:
    """A job, and the node it ran on (a tuning's edits are sent there)."""
    return ray.get_runtime_context().get_node_id(), run_job(fn, *args)


class RayExecutor:
    """Submits jobs as Ray tasks of ``gpus`` GPUs and ``cpus`` CPUs on the cluster at ``address``."""

    def __init__(self, address: str, gpus: float, cpus: float):
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        env_vars = {"PYTHONPATH": child_env()["PYTHONPATH"]}
        check_address(address)
        try:
            ray.init(
                address=address,
                runtime_env={"env_vars": env_vars},
                include_dashboard=False,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise VidSynthError(
                f"cannot start or join Ray at {address!r}: {str(err).rstrip('.')}. Use --ray local for a cluster on "
                "this machine, or start one with `ray start --head` and pass --ray auto"
            ) from err
        available = ray.cluster_resources()
        for name, need in (("GPU", gpus), ("CPU", cpus)):
            if need > available.get(name, 0):
                ray.shutdown()
                raise VidSynthError(
                    f"each cell asks for {need:g} {name}(s) but the Ray cluster has {available.get(name, 0):g}. "
                    f"Lower --{name.lower()}s-per-cell, or add nodes with {name}s"
                )
        self._task = ray.remote(_run_here)
        self._resources = {"num_gpus": gpus, "num_cpus": cpus, "max_retries": 0}
        self._pending: dict[ray.ObjectRef, Any] = {}

    def submit(self, key: Any, fn: Callable, *args, node: str | None = None) -> None:
        options = dict(self._resources)
        if node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        self._pending[self._task.options(**options).remote(fn, *args)] = key

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def next_done(self) -> tuple[Any, Outcome, str | None]:
        (ref,), _ = ray.wait(list(self._pending), num_returns=1)
        key = self._pending.pop(ref)
        try:
            node, outcome = ray.get(ref)
        except RayError as err:  # the worker died (out of memory, a node lost): this job fails, the others go on
            return key, Outcome("failed", error=f"Ray task failed: {str(err).splitlines()[0]}"), None
        return key, outcome, node

    def close(self) -> None:
        ray.shutdown()
