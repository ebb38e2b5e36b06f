"""One executor for independent tasks: in-process, a local process pool, or a Dask cluster.

The hindsight bound (slots are independent) and the benchmark suites (tasks keyed by config and
seed) both map a pure function over items through :func:`map_tasks`, so a computation that
outgrows one machine runs on an existing Dask distributed cluster by the same code path.

* ``workers=1`` (or one item): a plain loop in this process;
* ``workers=K`` (default: the CPU count): a ``concurrent.futures.ProcessPoolExecutor``;
* ``scheduler="tcp://host:8786"``: ``distributed.Client(scheduler).map`` on that cluster, or a
  ``distributed.Client`` object passed as ``scheduler``.

Results come back in the order of ``items`` whatever the back end, so the numbers do not depend on
where they were computed. Nothing listens on a port unless the user starts a Dask cluster.
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Callable, Iterable, Sequence

from .errors import WdtnoptError


def default_workers() -> int:
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # pragma: no cover - not Linux
        return max(os.cpu_count() or 1, 1)


def map_tasks(fn: Callable[[Any], Any], items: Sequence[Any] | Iterable[Any], *, workers: int | None = None,
              scheduler: Any = None, progress: bool | str = False,
              on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
    """``[fn(x) for x in items]`` on the chosen back end, in the order of ``items``.

    ``progress``: True or a label shows a progress bar with ETA. ``on_result(i, result)`` is called
    in this process as each result arrives (e.g. to write it to disk at once, so that a killed run
    loses nothing that finished).
    """
    items = list(items)
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise WdtnoptError(f"workers: expected an integer >= 1, got {workers!r}")
    results: list[Any] = [None] * len(items)
    bar = _bar(progress, len(items))

    def done(i: int, r: Any) -> None:
        results[i] = r
        if on_result is not None:
            on_result(i, r)
        if bar is not None:
            bar.update(1)

    try:
        if scheduler is not None:
            _run_dask(fn, items, scheduler, done)
        elif (workers or default_workers()) == 1 or len(items) <= 1:
            for i, x in enumerate(items):
                done(i, fn(x))
        else:
            with ProcessPoolExecutor(max_workers=min(workers or default_workers(), len(items))) as pool:
                futures = {pool.submit(fn, x): i for i, x in enumerate(items)}
                for fut in as_completed(futures):
                    done(futures[fut], fut.result())
    finally:
        if bar is not None:
            bar.close()
    return results


def _run_dask(fn: Callable[[Any], Any], items: list[Any], scheduler: Any, done: Callable[[int, Any], None]) -> None:
    try:
        from distributed import Client, as_completed as dask_completed
    except ImportError:
        raise WdtnoptError("scheduler: Dask is not installed; pip install 'wdtnopt[dask]'") from None
    own = not isinstance(scheduler, Client)
    client = _connect(Client, scheduler) if own else scheduler
    try:
        futures = client.map(fn, items, pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_completed(futures):
            done(index[fut.key], fut.result())
    finally:
        if own:
            client.close()


def _connect(client_cls: Any, scheduler: Any) -> Any:
    """A Dask client of ``scheduler``; an address it cannot parse or reach is a one-line error."""
    try:
        return client_cls(scheduler, timeout="20s")
    except ValueError as exc:   # e.g. "missing port number in address 'foo'"
        raise WdtnoptError(f"scheduler: expected a Dask scheduler address such as tcp://HOST:8786, got "
                           f"{scheduler!r} ({exc})") from None
    except (OSError, TimeoutError) as exc:
        raise WdtnoptError(f"scheduler: cannot reach the Dask scheduler at {scheduler!r} ({exc})") from None


def _bar(progress: bool | str, total: int) -> Any:
    if not progress or total == 0:
        return None
    from .progress import progress_bar
    return progress_bar(total=total, desc=progress if isinstance(progress, str) else None, unit="task")


class StickyPool:
    """Workers that keep state between calls: every task of group ``g`` runs in the same process.

    The hindsight bound re-solves the same slots at every dual step with new prices only
    (docs/longterm.md); a slot's warm-started solver lives in the process that owns its group.
    ``fn`` keeps that state itself (a module-level dict of the worker process). Back ends as in
    :func:`map_tasks`: ``workers=1`` runs in this process; ``workers=K`` keeps K single-process
    pools, group ``g`` on pool ``g % K``; ``scheduler`` pins group ``g`` to one Dask worker
    (``workers=[address]``). Results come back in the order of the tasks.
    """

    def __init__(self, workers: int | None = 1, scheduler: Any = None):
        if workers is not None and (not isinstance(workers, int) or workers < 1):
            raise WdtnoptError(f"workers: expected an integer >= 1, got {workers!r}")
        self.scheduler = scheduler
        self.size = 1 if scheduler is None and (workers or default_workers()) == 1 else (workers or default_workers())
        self._pools: list[ProcessPoolExecutor] = []
        self._client: Any = None
        self._own_client = False
        self._addresses: list[str] = []

    @property
    def in_process(self) -> bool:
        return self.scheduler is None and self.size == 1

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[tuple[int, Any]],
            on_result: Callable[[int, Any], None] | None = None) -> list[Any]:
        """``[fn(arg) for (group, arg) in tasks]``, each run where its group lives."""
        results: list[Any] = [None] * len(tasks)

        def done(i: int, r: Any) -> None:
            results[i] = r
            if on_result is not None:
                on_result(i, r)

        if self.in_process:
            for i, (_, arg) in enumerate(tasks):
                done(i, fn(arg))
        elif self.scheduler is not None:
            self._map_dask(fn, tasks, done)
        else:
            if not self._pools:
                self._pools = [ProcessPoolExecutor(max_workers=1) for _ in range(self.size)]
            futures = {self._pools[g % self.size].submit(fn, arg): i for i, (g, arg) in enumerate(tasks)}
            for fut in as_completed(futures):
                done(futures[fut], fut.result())
        return results

    def _map_dask(self, fn: Callable[[Any], Any], tasks: Sequence[tuple[int, Any]], done: Callable[[int, Any], None]) -> None:
        try:
            from distributed import Client, as_completed as dask_completed
        except ImportError:
            raise WdtnoptError("scheduler: Dask is not installed; pip install 'wdtnopt[dask]'") from None
        if self._client is None:
            self._own_client = not isinstance(self.scheduler, Client)
            self._client = _connect(Client, self.scheduler) if self._own_client else self.scheduler
            self._addresses = sorted(self._client.scheduler_info()["workers"])
        addrs = self._addresses
        futures = [self._client.submit(fn, arg, workers=[addrs[g % len(addrs)]] if addrs else None,
                                       allow_other_workers=False, pure=False) for g, arg in tasks]
        index = {f.key: i for i, f in enumerate(futures)}
        for fut in dask_completed(futures):
            done(index[fut.key], fut.result())

    def release_client(self) -> None:
        """Close the Dask client this pool opened (one passed in as ``scheduler`` is the caller's and
        stays open); the next :meth:`map` connects again. The slots' state lives in the cluster's
        workers, not in the client, so it survives."""
        if self._client is not None and self._own_client:
            self._client.close()
            self._client = None

    def close(self) -> None:
        for p in self._pools:
            p.shutdown(wait=True, cancel_futures=True)
        self._pools = []
        if self._client is not None and self._own_client:
            self._client.close()
        self._client = None
