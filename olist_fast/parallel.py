"""How many threads the model stage uses: one process-wide setting.

The default is the cores this process may run on. ``run`` and ``train`` set it from
``RunConfig.n_jobs`` for their duration. It is a plain module setting rather than a
context variable because the fits read it from worker threads, which do not inherit a
caller's context.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def default_n_jobs() -> int:
    """The threads the model stage uses by default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


_lock = threading.Lock()
_job = threading.RLock()
"""Held for a whole job: the thread settings (this module's and BLAS/OpenMP's, both
process-wide) cannot differ between two jobs running at once, so jobs in one process
run one after the other (a nested call in the same thread, such as ``score`` inside a
job, re-enters)."""
_threads: int | None = None


def threads() -> int:
    """The threads to use now (at least 1)."""
    return _threads or default_n_jobs()


@contextmanager
def using_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` threads (None: the default) inside the block, then restore.

    Inside, BLAS and OpenMP run on one thread each: the model stage spreads whole fits
    and row chunks over threads instead. Two fits calling a multi-threaded BLAS at once
    share its thread pool, and how a call's sums are split then depends on timing: the
    last bits of the scores changed from run to run on a loaded machine (seen as a flaky
    same-seed test). One BLAS thread per caller makes every sum's order fixed.
    """
    from threadpoolctl import threadpool_limits

    global _threads
    with _job:
        with _lock:
            before, _threads = _threads, (n if n is not None else _threads)
        try:
            with threadpool_limits(limits=1):
                yield
        finally:
            with _lock:
                _threads = before
