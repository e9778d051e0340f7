"""The ``olist-fast`` console script (and ``python -m olist_fast``).

Before polars is first imported it sets the allocator's purge policy. Polars links
jemalloc and configures it in ``polars/__init__.py`` (``dirty_decay_ms:500,
muzzy_decay_ms:1000``), appending whatever ``_RJEM_MALLOC_CONF`` holds; with
``muzzy_decay_ms:0`` freed pages go back to the system at the first decay step
instead of lingering a further second as "muzzy" pages that still count as resident
(what it saves: docs/performance.md, "Choices in the code, measured"). A value the user
sets in ``_RJEM_MALLOC_CONF`` wins.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from typing import NoReturn

MALLOC_CONF = "muzzy_decay_ms:0"


def configure_allocator() -> None:
    """Set ``_RJEM_MALLOC_CONF`` to :data:`MALLOC_CONF` unless the user has set it; only
    effective before the first ``import polars`` of the process."""
    os.environ.setdefault("_RJEM_MALLOC_CONF", MALLOC_CONF)


def run_cli() -> int:
    """Run the command line and return its exit code (the process goes on)."""
    configure_allocator()
    from olist_fast.cli import main as cli_main

    try:
        cli_main()
    except SystemExit as exc:
        return exit_code(exc)
    return 0


def exit_code(exc: SystemExit) -> int:
    """The process exit code ``sys.exit`` would give for ``exc``."""
    if exc.code is None:
        return 0
    if isinstance(exc.code, int):
        return exc.code
    print(exc.code, file=sys.stderr)
    return 1


def main() -> NoReturn:
    """The console script: run the command, then end the process without tearing the
    interpreter down.

    Everything the command wrote is closed and renamed by then; what remains at exit is
    Python's finalisation of every loaded module (scikit-learn, SciPy, pandas, polars,
    matplotlib), measured at 0.4-0.45 s after a ``run`` at scale 1, about 8 % of the
    whole command. The exit handlers still run (``atexit``: logging's flush, Spark's
    shutdown, temporary-file clean-up) and the standard streams are flushed; only the
    module teardown is skipped."""
    code = run_cli()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to deliver
            stream.flush()
    os._exit(code)
