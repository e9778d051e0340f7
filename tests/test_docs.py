"""Every code block of the README and docs/ is exercised: Python blocks run as written
(against a small generated shop in ``datasets/``), or, where they need a remote service
(an object store, a Spark cluster), compile and name only public attributes that
exist; every ``olist-fast`` command line parses with the CLI's own parser. Output and
diagram blocks (no language) are not code. The README's embedding block runs against
a local S3 server in test_embedding.py."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

import pytest

import olist_fast
from olist_fast import spark as olist_spark
from olist_fast.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REMOTE = re.compile(r"\b(s3a?|gs|az|sc|spark)://")


def blocks(language: str) -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for lang, code in re.findall(r"```(\w*)\n(.*?)```", page.read_text(), flags=re.S):
            if lang == language:
                found.append((f"{page.relative_to(ROOT)}#{len(found)}", code))
    return found


PYTHON = blocks("python")
COMMANDS = [
    (where, line)
    for where, code in blocks("bash")
    for line in code.splitlines()
    if line.strip().startswith("olist-fast ")
]


def test_the_pages_hold_code() -> None:
    assert len(PYTHON) >= 4 and len(COMMANDS) >= 6


@pytest.mark.parametrize(("where", "code"), PYTHON, ids=[w for w, _ in PYTHON])
def test_python_blocks(where, code, data_dir: Path, tmp_path, monkeypatch) -> None:
    tree = ast.parse(code)  # at least, it is Python
    modules = {"of": olist_fast, "olist_fast": olist_fast, "S": olist_spark}
    for node in ast.walk(tree):  # every public name it uses exists
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = modules.get(node.value.id)
            if module is not None:
                assert hasattr(module, node.attr), f"{where}: {node.value.id}.{node.attr}"
    if REMOTE.search(code) or "def " in code:
        return  # needs a remote service, or only defines a function (run elsewhere)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "datasets").symlink_to(data_dir, target_is_directory=True)
    exec(compile(code, where, "exec"), {})


@pytest.mark.parametrize(("where", "line"), COMMANDS, ids=[w for w, _ in COMMANDS])
def test_command_lines_parse(where, line) -> None:
    line = line.split(" #")[0]
    words = shlex.split(re.sub(r"\[[^\]]*\]", "", line))[1:]  # optional parts dropped
    command = words[0]
    group = __import__("typer.main", fromlist=["get_command"]).get_command(app)
    cmd = group.commands[command]
    ctx = cmd.make_context(command, words[1:], resilient_parsing=False)
    assert ctx.params, f"{where}: {line}"
