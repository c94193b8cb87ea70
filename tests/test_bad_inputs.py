"""`linkage check` on a corpus of bad and awkward input files (tests/data/bad/cases.yaml).

Each case states the documented outcome: an error naming the file (exit 1, no traceback), or a
report (exit 0) whose record counts and flag counts are exact. A case marked ``known_bug`` states
what the tool should do and is expected to fail until the reader is fixed (xfail, strict).
"""

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.sources.schema import FLAGS, SOURCE_KINDS

BAD = Path(__file__).parent / "data" / "bad"
CASES = yaml.safe_load((BAD / "cases.yaml").read_text(encoding="utf-8"))
OUTCOMES = {"error", "flagged", "clean"}
KEYS = {"name", "about", "source", "paths", "args", "outcome", "message", "flags", "records",
        "known_bug", "missing_path"}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

runner = CliRunner()


def squeezed(text: str) -> str:
    """Text without colour codes or whitespace: Rich wraps long lines wherever it likes."""
    return "".join(ANSI.sub("", text).split())


def params() -> list:
    out = []
    for case in CASES:
        marks = ([pytest.mark.xfail(strict=True, reason=case["known_bug"])]
                 if case.get("known_bug") else [])
        out.append(pytest.param(case, id=case["name"], marks=marks))
    return out


def run_check(case: dict, monkeypatch) -> object:
    monkeypatch.chdir(BAD)  # paths and messages are relative to the corpus folder
    args = ["check", "--source", case["source"], *map(str, case.get("args", []))]
    if case["outcome"] != "error":
        args.append("--json")
    return runner.invoke(app, [*args, *case["paths"]])


@pytest.mark.parametrize("case", params())
def test_bad_input(case: dict, monkeypatch) -> None:
    result = run_check(case, monkeypatch)
    output = result.output
    assert "Traceback" not in output
    assert "internal error" not in output
    if case["outcome"] == "error":
        # a user error exits through typer.Exit; anything else escaped the reader
        assert isinstance(result.exception, SystemExit), repr(result.exception)
        assert result.exit_code == 1, output
        assert squeezed(case["message"]) in squeezed(output), output
        return
    assert result.exception is None, repr(result.exception)
    assert result.exit_code == 0, output
    report = json.loads(result.stdout)
    assert report["records_in"] == report["records_out"] == case["records"]
    assert report["flags"] == case.get("flags", {})


def test_cases_are_well_formed() -> None:
    assert len(CASES) >= 24
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    for case in CASES:
        name = case["name"]
        assert set(case) <= KEYS, f"{name}: unknown keys {set(case) - KEYS}"
        assert case["source"] in SOURCE_KINDS, name
        assert case["outcome"] in OUTCOMES, name
        assert case["paths"] and isinstance(case["paths"], list), name
        for path in case["paths"]:
            assert (BAD / path).exists() != bool(case.get("missing_path")), f"{name}: {path}"
        if case["outcome"] == "error":
            assert "flags" not in case and "records" not in case, name
            named = [Path(p).name for p in [*case["paths"], *map(str, case.get("args", []))]
                     if (BAD / p).exists() or case.get("missing_path")]
            assert any(n in case["message"] for n in named), f"{name}: message names no file"
        else:
            assert "message" not in case and isinstance(case["records"], int), name
            flags = case.get("flags", {})
            assert (case["outcome"] == "clean") == (not flags), name
            assert set(flags) <= set(FLAGS), f"{name}: unknown flag codes"
            assert all(isinstance(n, int) and n > 0 for n in flags.values()), name


def test_every_file_in_the_corpus_is_used() -> None:
    used = set()
    for case in CASES:
        for path in [*case["paths"], *map(str, case.get("args", []))]:
            target = BAD / path
            if target.is_dir():
                used |= {p for p in target.rglob("*") if p.is_file()}
            elif target.is_file():
                used.add(target)
    files = {p for p in BAD.rglob("*") if p.is_file() and p.name != "cases.yaml"}
    assert len(files) >= 24
    assert not files - used, sorted(str(p.relative_to(BAD)) for p in files - used)
