from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from typer.testing import CliRunner

from olist_fast import __version__
from olist_fast.cli import app
from olist_fast.entry import LAYOUT_FEATURES_MALLOC_CONF, MALLOC_CONF, malloc_conf


def test_version_and_help(cli: CliRunner) -> None:
    r = cli.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.stdout
    r = cli.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("generate", "validate"):
        assert cmd in r.stdout


def test_generate_then_validate(cli: CliRunner, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = cli.invoke(app, ["generate", "--out", str(out), "--scale", "0.01", "--seed", "5"])
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("*.csv"))) == 9
    r = cli.invoke(app, ["validate", "--data", str(out)])
    assert r.exit_code == 0, r.output
    assert "Data health:" in r.stdout


def test_no_data_generates_the_demo_set_first(
    cli: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the CLI's ``run`` invents data, and says so; every other command, and the
    library, refuses an empty default folder with one line."""
    import olist_fast.data as data
    import olist_fast.pipeline as pipeline

    calls = []

    def fake_generate(path, *, scale, random_state):  # the scale-1 set takes seconds
        calls.append((scale, random_state))
        from olist_fast.synth import generate

        return generate(path, scale=0.01, random_state=random_state)

    seen = []

    def fake_run(config, **kwargs):  # the job itself is tested elsewhere
        seen.append(config.data)
        raise data.OlistDataError("stop here")

    monkeypatch.setattr(data, "generate", fake_generate)
    monkeypatch.setattr(pipeline, "run", fake_run)
    monkeypatch.setenv("OLIST_FAST_DATA", str(tmp_path / "datasets"))
    r = cli.invoke(app, ["validate"])
    assert r.exit_code == 1 and "no Olist files" in r.stderr and calls == []
    with pytest.raises(data.OlistDataError, match="no Olist files"):
        pipeline.read_source(None, None)
    r = cli.invoke(app, ["run"])
    assert r.exit_code == 1 and "stop here" in r.stderr
    assert "generating the scale-1 demo dataset" in r.stderr
    assert calls == [(1.0, 0)] and seen == [tmp_path / "datasets"]
    r = cli.invoke(app, ["validate"])  # the demo set is there now: nothing generated
    assert r.exit_code == 0, r.output
    assert calls == [(1.0, 0)]


def test_bad_option_value_is_a_usage_error(cli: CliRunner, tmp_path: Path) -> None:
    r = cli.invoke(app, ["generate", "--out", str(tmp_path), "--scale", "-1"])
    assert r.exit_code == 2


def test_errors_are_one_line_and_debug_shows_the_exception(cli: CliRunner, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = ["generate", "--out", str(blocker / "sub"), "--scale", "0.01"]
    r = cli.invoke(app, args)
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.output
    r = cli.invoke(app, ["--debug", *args])
    assert isinstance(r.exception, OSError)


def test_features_writes_sorted_parquet_and_csv(
    cli: CliRunner, small_csv_dir: Path, tmp_path: Path
) -> None:
    import polars as pl

    from olist_fast.features import FEATURES

    pq = tmp_path / "f.parquet"
    args = ["features", "--data", str(small_csv_dir), "--as-of", "2018-03-01", "--out", str(pq)]
    r = cli.invoke(app, args)
    assert r.exit_code == 0, r.output
    df = pl.read_parquet(pq)
    assert df.columns == ["customer_unique_id", *FEATURES, "bought_again", "future_spend"]
    assert df["customer_unique_id"].is_sorted()
    csv = tmp_path / "f.csv"
    r = cli.invoke(app, [*args[:-1], str(csv)])
    assert r.exit_code == 0, r.output
    assert pl.read_csv(csv).height == df.height


def test_features_default_as_of_is_the_healthy_end(
    cli: CliRunner, small_csv_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "f.parquet"
    r = cli.invoke(app, ["features", "--data", str(small_csv_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "as_of 2018-09-01" in r.stderr
    assert "no labels" in r.stderr


def test_features_bad_as_of_and_extension(
    cli: CliRunner, small_csv_dir: Path, tmp_path: Path
) -> None:
    base = ["features", "--data", str(small_csv_dir)]
    r = cli.invoke(app, [*base, "--as-of", "June", "--out", str(tmp_path / "f.parquet")])
    assert r.exit_code == 1 and "--as-of 'June'" in r.stderr
    r = cli.invoke(app, [*base, "--out", str(tmp_path / "f.json")])
    assert r.exit_code == 1 and "unsupported output extension" in r.stderr
    assert not list(tmp_path.iterdir())


def test_convert_then_features_from_parquet(
    cli: CliRunner, small_csv_dir: Path, tmp_path: Path
) -> None:
    import polars as pl

    pq_dir = tmp_path / "pq"
    r = cli.invoke(app, ["convert", "--data", str(small_csv_dir), "--out", str(pq_dir)])
    assert r.exit_code == 0, r.output
    a, b = tmp_path / "a.parquet", tmp_path / "b.parquet"
    for data, out in ((small_csv_dir, a), (pq_dir, b)):
        args = ["features", "--data", str(data), "--as-of", "2018-01-01", "--out", str(out)]
        assert cli.invoke(app, args).exit_code == 0
    assert pl.read_parquet(a).equals(pl.read_parquet(b))


def test_public_names_resolve() -> None:
    """Every public name is the object its module defines, and ``dir`` lists exactly
    them (the public API: ``__all__``, the lazy ``_EXPORTS`` and ``dir`` agree)."""
    import importlib

    import olist_fast

    exports = olist_fast._EXPORTS
    assert set(olist_fast.__all__) == {*exports, "__version__"}
    for name, module in exports.items():
        assert getattr(olist_fast, name) is getattr(importlib.import_module(module), name), name
    assert [n for n in dir(olist_fast) if not n.startswith("__")] == sorted(exports)


CHILD = """
import sys
import olist_fast.entry as entry
assert "polars" not in sys.modules, "the entry point imported polars too early"
sys.argv = ["olist-fast", *sys.argv[1:]]
assert entry.run_cli() == 0
import polars
print(polars.jemalloc_conf)
"""


@pytest.mark.parametrize("on_layout", [False, True])
@pytest.mark.parametrize("user_conf", [None, "dirty_decay_ms:100", "inherited"])
def test_entry_point_sets_the_allocator_policy_before_polars(
    user_conf: str | None, on_layout: bool, tmp_path: Path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    if user_conf == "inherited":  # a child of olist-fast (bench) has the parent's setting
        env["_RJEM_MALLOC_CONF"] = MALLOC_CONF
        user_conf = None
    if user_conf:
        env["_RJEM_MALLOC_CONF"] = user_conf
    (tmp_path / "olist_layout.json").write_text("{}")
    args = ["features", "--data", str(tmp_path), "--help"] if on_layout else ["--version"]
    out = subprocess.run(
        [sys.executable, "-c", CHILD, *args], env=env, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert out[0] == f"olist-fast {__version__}" or on_layout
    ours = LAYOUT_FEATURES_MALLOC_CONF if on_layout else MALLOC_CONF
    # polars appends the variable to its own defaults; the last setting of a key wins
    assert out[-1].endswith("," + (user_conf or ours))


def test_only_features_on_a_local_layout_keeps_freed_pages_longer(tmp_path: Path) -> None:
    from olist_fast import entry, layout

    assert entry.LAYOUT_FILE == layout.LAYOUT_FILE
    lay, folder = tmp_path / "layout", tmp_path / "csv"
    lay.mkdir()
    folder.mkdir()
    (lay / layout.LAYOUT_FILE).write_text("{}")
    for args in (
        ["features", "--data", str(lay)],
        ["--debug", "features", "--as-of", "2018-06-01", f"--data={lay}", "--out", "f.parquet"],
    ):
        assert malloc_conf(args) == LAYOUT_FEATURES_MALLOC_CONF, args
    for args in (
        ["features", "--data", str(folder)],
        ["features", "--data", "a" * 5000],  # too long a name: the command says so, not this
        ["features", "--data"],
        ["run", "--data", str(lay)],
        ["score", "--data", str(lay)],
        ["features", "--data", f"file://{lay}"],
        ["--version"],
        [],
    ):
        assert malloc_conf(args) == MALLOC_CONF, args
    # without --data the default folder decides: $OLIST_FAST_DATA, else ./datasets
    from olist_fast.data import DEFAULT_DATA_DIR

    assert Path("datasets") == DEFAULT_DATA_DIR
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OLIST_FAST_DATA", str(lay))
        assert malloc_conf(["features", "--out", "f.parquet"]) == LAYOUT_FEATURES_MALLOC_CONF
        mp.delenv("OLIST_FAST_DATA")
        mp.chdir(tmp_path)
        assert malloc_conf(["features"]) == MALLOC_CONF
        lay.rename(tmp_path / "datasets")
        assert malloc_conf(["features"]) == LAYOUT_FEATURES_MALLOC_CONF


EXITING = """
import atexit, sys
import olist_fast.entry as entry
flag = sys.argv[1]
atexit.register(lambda: open(flag, "w").write("ran"))
sys.argv = ["olist-fast", *sys.argv[2:]]
entry.main()
raise AssertionError("main returned")
"""


@pytest.mark.parametrize(
    ("args", "code", "stream", "text"),
    [
        (["--version"], 0, "stdout", "olist-fast "),
        (["validate", "--data", "/nonexistent-olist"], 1, "stderr", "/nonexistent-olist"),
        (["no-such-command"], 2, "stderr", "No such command"),
    ],
)
def test_console_script_ends_with_the_command_s_code_output_and_exit_handlers(
    tmp_path: Path, args: list[str], code: int, stream: str, text: str
) -> None:
    """``main`` skips the interpreter's module teardown (os._exit) but not the exit code,
    the flushed output or the atexit handlers."""
    flag = tmp_path / "atexit-ran"
    out = subprocess.run([sys.executable, "-c", EXITING, str(flag), *args],
                         capture_output=True, text=True)  # fmt: skip
    assert out.returncode == code, out.stderr
    assert text in getattr(out, stream)
    assert flag.read_text() == "ran"


def test_console_script_is_the_entry_point() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "olist-fast"]
    assert script.value == "olist_fast.entry:main"


def test_a_full_disk_is_one_line_wherever_it_is_met(tmp_path, capsys) -> None:
    """ENOSPC from Polars' writers (an OSError from the IPC and CSV writers, a ComputeError
    from the Parquet ones) and from the run's spill: one line naming it, exit 1."""
    import polars as pl
    import typer

    from olist_fast.cli import guarded
    from olist_fast.io import reading
    from olist_fast.sampling import Compactor

    df = pl.DataFrame({"customer_unique_id": ["a", "b"], "x": [1.0, 2.0]})

    def parquet_to_full_disk() -> None:
        with reading("the output"):
            df.write_parquet("/dev/full")

    spill = tmp_path / "spill"
    spill.mkdir()
    (spill / "000000.arrow").symlink_to("/dev/full")
    compactor = Compactor(spill, seed=1, train=False, fold=False)
    for fn, named in [
        (parquet_to_full_disk, "No space left on device"),
        (lambda: df.lazy().sink_parquet("/dev/full"), "No space left on device"),
        (lambda: compactor.add(df), f"{spill / '000000.arrow'}: No space left on device"),
    ]:
        with pytest.raises(typer.Exit) as exit_:
            guarded(fn)
        assert exit_.value.exit_code == 1
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith("error: ") and named in line and "internal" not in line
