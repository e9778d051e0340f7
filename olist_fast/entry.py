"""The ``olist-fast`` console script (and ``python -m olist_fast``).

Before polars is first imported it sets the allocator's purge policy. Polars links
jemalloc and configures it in ``polars/__init__.py`` (``dirty_decay_ms:500,
muzzy_decay_ms:1000``), appending whatever ``_RJEM_MALLOC_CONF`` holds; with
``muzzy_decay_ms:0`` freed pages go back to the system at the first decay step
instead of lingering a further second as "muzzy" pages that still count as resident
(what it saves: docs/performance.md, "Choices in the code, measured"). ``features`` on a
bucketed layout keeps freed pages dirty for 2 s instead of 0.5: its freed memory is one
bucket's, reused by the next bucket instead of being returned and faulted in again
(what it costs and saves: docs/performance.md, "Features at twice DuckDB, and run's
memory"). A value the user sets in ``_RJEM_MALLOC_CONF`` wins.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

MALLOC_CONF = "muzzy_decay_ms:0"
LAYOUT_FEATURES_MALLOC_CONF = "dirty_decay_ms:2000,muzzy_decay_ms:0"
LAYOUT_FILE = "olist_layout.json"
""":data:`olist_fast.layout.LAYOUT_FILE` (that module imports polars, which must not load
before the allocator is configured)."""


def malloc_conf(args: Sequence[str]) -> str:
    """The allocator setting for a command line (``args`` without the program name):
    :data:`LAYOUT_FEATURES_MALLOC_CONF` for ``features`` whose ``--data`` is a local
    bucketed layout, else :data:`MALLOC_CONF`."""
    words = [a for a in args if not a.startswith("-")]
    if not words or words[0] != "features":
        return MALLOC_CONF
    data = None
    for i, arg in enumerate(args):
        if arg == "--data" and i + 1 < len(args):
            data = args[i + 1]
        elif arg.startswith("--data="):
            data = arg.removeprefix("--data=")
    if data is None:  # the default folder (olist_fast.data.default_data_dir)
        data = os.environ.get("OLIST_FAST_DATA", "datasets")
    if "://" in data:
        return MALLOC_CONF
    try:
        on_layout = (Path(data) / LAYOUT_FILE).is_file()
    except (OSError, ValueError):  # an unreadable path: the command itself says so
        return MALLOC_CONF
    return LAYOUT_FEATURES_MALLOC_CONF if on_layout else MALLOC_CONF


def configure_allocator(args: Sequence[str] = ()) -> None:
    """Set ``_RJEM_MALLOC_CONF`` to :func:`malloc_conf` of ``args`` unless the user has set
    it; only effective before the first ``import polars`` of the process. A value that is
    one of ours was inherited from an ``olist-fast`` parent (``bench`` runs each command in
    a child) and is chosen again for this command."""
    current = os.environ.get("_RJEM_MALLOC_CONF")
    if current is None or current in (MALLOC_CONF, LAYOUT_FEATURES_MALLOC_CONF):
        os.environ["_RJEM_MALLOC_CONF"] = malloc_conf(args)


def run_cli() -> int:
    """Run the command line and return its exit code (the process goes on)."""
    configure_allocator(sys.argv[1:])
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
