"""Units as Ray tasks (``evalkit run --executor ray``), an optional extra: ``evalkit[ray]``.

One Ray task per (checkpoint, domain) unit (:func:`evalkit.execute.executors.evaluate_unit`), with
the requested CPUs/GPUs. The datasets and metric families go to the object store once
(``ray.put``) and every task reads them from there, not a copy per task. Each worker
process keeps its traced generators between tasks. A task that raises (or whose worker
dies) is retried once by Ray; a second failure becomes a failed checkpoint, like a
checkpoint that cannot be read. Workers never open the results store: the driver writes it.

Before the first unit, one probe task checks that workers run the driver's evalkit version
(a mismatch is a clear error, exit 2) and, with ``shared_fs="auto"``, whether they see OUT
(a file the driver just wrote there): then they read and write ``OUT/outputs`` themselves,
otherwise the driver ships cached outputs in and writes returned ones out.

Without ``address`` a local Ray instance is started (bound to 127.0.0.1, no dashboard) and
shut down at the end; ``address="auto"`` or ``"ray://host:port"`` joins a cluster.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from evalkit.execute.executors import UnitResult, WorkUnit, evaluate_unit
from evalkit.inputs.data.dataset import Dataset

INSTALL_HINT = ("--executor ray needs Ray, an optional extra: pip install 'evalkit[ray]' "
                "(or pip install 'ray>=2.9')")


class RayUnavailable(ImportError):
    """Ray is not installed (exit 2 with :data:`INSTALL_HINT`)."""


def import_ray():
    """The ``ray`` module, or :class:`RayUnavailable` saying how to install it."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable(INSTALL_HINT) from exc
    return ray


_POOL = None  # per worker process: traced generators survive between tasks


def _worker_pool():
    global _POOL
    if _POOL is None:
        from evalkit.inputs.models.runner import RunnerPool

        _POOL = RunnerPool()
    return _POOL


def _run_unit(unit: WorkUnit, datasets: dict[str, Dataset], families: list) -> UnitResult:
    """The Ray task body. Importing evalkit first settles the torch/TensorFlow import order
    (DESIGN.md) in the worker before either is loaded."""
    import evalkit  # noqa: F401

    return evaluate_unit(unit, datasets, families, _worker_pool())


def _torch_metrics_can_run() -> bool:
    """Do the LPIPS or Inception weights resolve here? Without them lpips and fid/kid are
    skipped before torch is imported (:mod:`evalkit.measure.lpips`), so a worker need not
    import the torch stack (~3-5 s of CPU on a small machine) to be warm."""
    from evalkit.measure import weights as W

    for spec in (W.ALEXNET, W.INCEPTION):
        try:
            W.resolve(spec)
            return True
        except W.WeightsMissing:
            continue
    return False


def _warm() -> int:
    """On a fresh worker: import what every unit needs (evalkit first, then TensorFlow and,
    when its weights are here, the torch stack), so that this cost overlaps the driver's
    own start (data loading)."""
    import time

    time.sleep(0.2)  # hold the slot a moment, so each warm-up lands on its own worker
    import evalkit  # noqa: F401
    import evalkit.core.tf  # noqa: F401
    import evalkit.execute.executors  # noqa: F401

    if _torch_metrics_can_run():
        try:
            import torchmetrics  # noqa: F401
        except ImportError:
            pass
    return os.getpid()


def _probe(path: str) -> tuple[str, bool, str]:
    """On a worker: (evalkit version, whether ``path`` is visible, host)."""
    import socket

    import evalkit

    return evalkit.__version__, Path(path).is_file(), socket.gethostname()


class VersionMismatch(RuntimeError):
    """Workers run another evalkit version than the driver (exit 2)."""


class RayExecutor:
    """Runs units as Ray tasks; yields results as tasks finish.

    Args:
        address: None to start a local Ray instance; ``auto`` or ``ray://host:port`` to
            join a running cluster.
        workers: local instance only: how many tasks may run at once (CPUs given to Ray
            = ``workers * cpus_per_task``) [default: the machine's cores].
        cpus_per_task, gpus_per_task: resources each task asks for.
        shared_fs: ``auto`` (probe), ``yes`` or ``no``: do workers see OUT?
        log: one-line messages (start-up time, mode).
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 cpus_per_task: float = 1.0, gpus_per_task: float = 0.0,
                 shared_fs: str = "auto", log: Callable[[str], None] = print):
        ray = import_ray()
        self.ray, self.log = ray, log
        self.cpus_per_task, self.gpus_per_task = cpus_per_task, gpus_per_task
        self.shared_fs_mode = shared_fs
        self.shared_fs = shared_fs != "no"
        t0 = time.perf_counter()
        self.started = not ray.is_initialized()
        if self.started:
            if address is None:
                n = workers or os.cpu_count() or 1
                ray.init(num_cpus=max(1, int(round(n * cpus_per_task))),
                         num_gpus=None if gpus_per_task else 0,
                         include_dashboard=False, _node_ip_address="127.0.0.1",
                         configure_logging=False, log_to_driver=False)
            else:
                ray.init(address=address, configure_logging=False, log_to_driver=False)
        self.startup_s = time.perf_counter() - t0
        # start the workers now; they import TensorFlow and torch while the driver loads data
        if address is None:
            slots = workers or os.cpu_count() or 1
        else:
            cpus = ray.cluster_resources().get("CPU", 1)
            slots = min(64, max(1, int(cpus // max(cpus_per_task, 1e-9))))
        warm = ray.remote(_warm).options(num_cpus=cpus_per_task, num_gpus=gpus_per_task)
        self._warming = [warm.remote() for _ in range(slots)]

    def check_workers(self, out_dir: Path, version: str) -> float:
        """One probe task: same evalkit version (else :class:`VersionMismatch`) and, in
        ``auto`` mode, whether workers see OUT. Returns its wall time (s)."""
        t0 = time.perf_counter()
        marker = Path(out_dir) / "outputs" / f".ray-probe-{uuid.uuid4().hex[:12]}"
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("evalkit shared-filesystem probe\n")
        try:
            probe = self.ray.remote(_probe).options(num_cpus=0)
            got, sees, host = self.ray.get(probe.remote(str(marker.resolve())))
        finally:
            marker.unlink(missing_ok=True)
        if got != version:
            raise VersionMismatch(f"Ray worker on {host} has evalkit {got}, the driver {version}: "
                                  "install the same evalkit version on every node")
        if self.shared_fs_mode == "auto":
            self.shared_fs = sees
        return time.perf_counter() - t0

    def run(self, units: list[WorkUnit], datasets: dict[str, Dataset], families: list,
            on_images: Callable[[int], None] | None = None) -> Iterator[UnitResult]:
        ray = self.ray
        if not units:
            return
        ds_ref, fam_ref = ray.put(datasets), ray.put(families)  # once, not per task
        task = ray.remote(_run_unit).options(
            num_cpus=self.cpus_per_task, num_gpus=self.gpus_per_task,
            max_retries=1, retry_exceptions=True)
        pending = {task.remote(u, ds_ref, fam_ref): u for u in units}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    unit = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except Exception as exc:  # failed twice (raised or its worker died)
                        cause = getattr(exc, "cause", None) or exc
                        msg = str(cause).strip().splitlines()
                        result = UnitResult(unit.ref.name, error=(
                            f"Ray task failed twice: {type(cause).__name__}: "
                            f"{msg[-1] if msg else ''}"))
                    if result.version_mismatch:
                        raise VersionMismatch(result.version_mismatch)
                    if on_images:
                        on_images(sum(len(datasets[d]) for d, _ in unit.todo if d in datasets))
                    yield result
        finally:
            for ref in pending:  # interrupted: stop what is still queued or running
                ray.cancel(ref, force=True)

    def close(self) -> None:
        for ref in getattr(self, "_warming", []):
            self.ray.cancel(ref, force=True)
        if self.started and self.ray.is_initialized():
            self.ray.shutdown()
