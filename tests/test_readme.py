"""The README's walk-through runs as written: every command of its step-by-step section, in
order, in a real bash shell (``set -e``) in an empty folder, with the virtualenv's ``bin`` first
on PATH as the README's set-up (``source .venv/bin/activate``) leaves it. Nothing is
substituted: the README's own world is small enough (2,000 children) to run in about a minute.
The set-up block itself (making the virtualenv, pip install) is not run; the test checks that it
activates the virtualenv before it uses ``linkage``."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from linkage.pipelines.delivery import folder_entries

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
WALK_THROUGH = "## The whole flow, step by step"
SET_UP = "## Set up"


def section(heading: str) -> str:
    """The README's text from ``heading`` to the next heading of its level."""
    text = README.read_text(encoding="utf-8")
    assert heading in text, f"README.md has no section {heading!r}"
    rest = text[text.index(heading) + len(heading):]
    following = re.search(r"^## ", rest, re.MULTILINE)
    return rest[:following.start()] if following else rest


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", text, re.MULTILINE | re.DOTALL)


def commands(block: str) -> list[str]:
    """The block's commands: continued lines (a trailing backslash) joined, a here-document
    kept with its command, blank and comment-only lines dropped."""
    found, lines = [], iter(block.splitlines())
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = line
        while command.endswith("\\"):
            command += "\n" + next(lines)
        here = re.search(r"<<\s*'?(\w+)'?", command)
        if here:
            for body in lines:
                command += "\n" + body
                if body == here.group(1):
                    break
        found.append(command)
    return found


def test_the_set_up_activates_the_virtualenv_before_it_uses_linkage():
    lines = [c for block in bash_blocks(section(SET_UP)) for c in commands(block)]
    activate = next(i for i, c in enumerate(lines) if c.startswith("source .venv/bin/activate"))
    first_use = next(i for i, c in enumerate(lines) if c.startswith("linkage "))
    assert activate < first_use


def test_the_walk_through_runs_command_by_command(tmp_path):
    bin_folder = Path(sys.executable).parent
    if not (bin_folder / "linkage").exists():
        pytest.skip("the linkage command is not installed beside this Python")
    steps = [c for block in bash_blocks(section(WALK_THROUGH)) for c in commands(block)]
    assert len(steps) >= 10 and steps[0].startswith("linkage synth")
    # before each command, its number goes to a file: a failure names the command at fault
    script = "set -euo pipefail\n" + "".join(f"echo {i} > .step\n{step}\n"
                                             for i, step in enumerate(steps))
    # a newcomer's shell: no key from this test session's environment, this checkout first
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("LINKAGE_")}
    env.update(PATH=f"{bin_folder}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(REPO))
    run = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=900)
    reached = int((tmp_path / ".step").read_text())
    assert run.returncode == 0, (f"README command {reached + 1} of {len(steps)} failed:\n"
                                 f"{steps[reached]}\n{run.stderr[-3000:]}")
    assert reached == len(steps) - 1

    entries = folder_entries(tmp_path / "world" / "providers")
    assert sorted(p.name for p in (tmp_path / "bundles").iterdir()) == sorted(
        entry.bundle for entry in entries)
    assert any(entry.source == "generic" for entry in entries)  # the attainment files
    for written in ("world/world.json", "register/provider.pub", "spine.duckdb",
                    "request.yaml", "extracts/P0001/manifest.json", "report.html",
                    "why.html"):
        assert (tmp_path / written).is_file(), written
    assert "pairwise precision" in run.stdout  # evaluate printed its scores


def test_the_readme_says_how_long_the_tests_take():
    assert re.search(r"about \d+ minutes", section("## Tests"))
