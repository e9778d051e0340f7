from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from olist_fast import __version__
from olist_fast.cli import app

runner = CliRunner()


def test_version_and_help() -> None:
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.stdout
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("generate", "validate"):
        assert cmd in r.stdout


def test_generate_then_validate(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = runner.invoke(app, ["generate", "--out", str(out), "--scale", "0.01", "--seed", "5"])
    assert r.exit_code == 0, r.output
    assert len(list(out.glob("*.csv"))) == 9
    r = runner.invoke(app, ["validate", "--data", str(out)])
    assert r.exit_code == 0, r.output
    assert "Data health:" in r.stdout


def test_no_data_generates_the_demo_set_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import olist_fast.data as data

    calls = []

    def fake_generate(path, *, scale, random_state):  # the scale-1 set takes seconds
        calls.append((scale, random_state))
        from olist_fast.synth import generate

        return generate(path, scale=0.01, random_state=random_state)

    monkeypatch.setattr(data, "generate", fake_generate)
    monkeypatch.setenv("OLIST_FAST_DATA", str(tmp_path / "datasets"))
    r = runner.invoke(app, ["validate"])
    assert r.exit_code == 0, r.output
    assert "generating the scale-1 demo dataset" in r.stderr
    assert calls == [(1.0, 0)]
    r = runner.invoke(app, ["validate"])  # second time: nothing generated
    assert calls == [(1.0, 0)]


def test_bad_option_value_is_a_usage_error(tmp_path: Path) -> None:
    r = runner.invoke(app, ["generate", "--out", str(tmp_path), "--scale", "-1"])
    assert r.exit_code == 2


def test_errors_are_one_line_and_debug_shows_the_exception(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    args = ["generate", "--out", str(blocker / "sub"), "--scale", "0.01"]
    r = runner.invoke(app, args)
    assert r.exit_code == 1
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in r.output
    r = runner.invoke(app, ["--debug", *args])
    assert isinstance(r.exception, OSError)
