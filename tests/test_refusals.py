"""Requests that cannot be answered right are refused, with a message and exit code 1: a
period the spine holds no returns for, another world's truth, disclosure control below its
floor, paths that cannot work (checked before any work), a world written over, and YAML
beyond its bounds (bombs, depth, size, self-reference) or names beyond theirs."""

import json
import time

import pytest
import yaml
from typer.testing import CliRunner

from linkage.bounded_yaml import MAX_BYTES, MAX_DEPTH, MAX_VALUES
from linkage.cli import app
from linkage.config import packaged_path
from tests.output import said

runner = CliRunner()
REQUEST = {"project": "P0001", "cohort": "cla_any_point", "period": 2024, "datasets": {}}


def refused(result, *words: str) -> str:
    """The command stopped with a message (not an internal error) holding ``words``."""
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    message = said(result)
    squeezed = "".join(message.split())   # the terminal may wrap a long path mid-word
    for word in words:
        assert "".join(word.split()) in squeezed, message
    return message


def write_request(path, **changes):
    path.write_text(yaml.safe_dump({**REQUEST, **changes}), encoding="utf-8")
    return path


def extract(spine, bundles, request, out, *options):
    return runner.invoke(app, [*options, "extract", "--spine", str(spine), "--request",
                               str(request), "--out", str(out), *map(str, bundles)])


# ---------------------------------------------------------------- a period outside the spine

@pytest.mark.parametrize(("cohort", "period", "missing"), [
    ("cla_any_point", 2035, "2035"), ("cin_31mar", 2019, "2019"),
    ("ever_cla_6y", 2022, "2017-2019")])
def test_an_extract_for_a_period_the_spine_lacks_is_refused(linked_spine, world_bundles,
                                                             tmp_path, cohort, period, missing):
    """The world holds the returns of 2020 to 2025: a cohort needing any other year (a
    six-year cohort: the five before too) is refused, naming the years the spine covers."""
    spine, _ = linked_spine
    request = write_request(tmp_path / "r.yaml", cohort=cohort, period=period)
    result = extract(spine, world_bundles, request, tmp_path / "out")
    refused(result, f"period: {period} cannot be answered", f"returns (ssda903, cin) of {missing}",
            "such returns for 2020-2025 only")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- another world's truth

@pytest.fixture(scope="module")
def other_world(tmp_path_factory):
    """A second world with the same rates: its record ids repeat many of the first's."""
    from synthetic.world import build_world, load_config, write_world

    out = tmp_path_factory.mktemp("other_world")
    write_world(build_world(2000, 12, load_config()), out)
    return out


def test_evaluate_refuses_another_worlds_truth(linked_spine, other_world, world_dir,
                                               linkage_key):
    spine, _ = linked_spine
    result = runner.invoke(app, ["evaluate", "--spine", str(spine), "--truth",
                                 str(other_world / "truth"), "--key", str(linkage_key)])
    message = refused(result, "the truth does not describe this spine", "truth_min_coverage")
    assert "precision" not in message
    own = runner.invoke(app, ["evaluate", "--spine", str(spine), "--truth",
                              str(world_dir / "truth"), "--key", str(linkage_key), "--json"])
    assert own.exit_code == 0, own.output
    assert json.loads(own.stdout)["records_linked_not_in_truth"] == 0


def test_report_refuses_another_worlds_truth(linked_spine, other_world, linkage_key, tmp_path):
    spine, _ = linked_spine
    result = runner.invoke(app, ["report", "--spine", str(spine), "--out",
                                 str(tmp_path / "r.html"), "--truth",
                                 str(other_world / "truth"), "--key", str(linkage_key)])
    refused(result, "the truth does not describe this spine")
    assert not (tmp_path / "r.html").exists()


# ---------------------------------------------------------------- disclosure control's floor

def site_with_min_count(folder, value: int):
    folder.mkdir()
    text = packaged_path("disclosure.yaml").read_text(encoding="utf-8")
    (folder / "disclosure.yaml").write_text(text.replace("min_count: 6 ", f"min_count: {value} "),
                                            encoding="utf-8")
    return folder


@pytest.mark.parametrize("value", [0, 1, 5])
def test_a_min_count_below_the_floor_is_refused_before_any_work(linked_spine, world_bundles,
                                                                 tmp_path, value):
    spine, _ = linked_spine
    site = site_with_min_count(tmp_path / "site", value)
    request = write_request(tmp_path / "r.yaml")
    result = extract(spine, world_bundles, request, tmp_path / "out", "--config", str(site))
    refused(result, "disclosure.yaml: min_count: must be at least")
    assert not (tmp_path / "out").exists()
    checked = runner.invoke(app, ["--config", str(site)])
    refused(checked, "min_count")


def test_a_min_count_above_the_floor_is_taken(tmp_path):
    site = site_with_min_count(tmp_path / "site", 11)
    assert runner.invoke(app, ["--config", str(site)]).exit_code == 0


def test_a_request_cannot_change_disclosure_control(linked_spine, world_bundles, tmp_path):
    spine, _ = linked_spine
    request = write_request(tmp_path / "r.yaml", min_count=0)
    result = extract(spine, world_bundles, request, tmp_path / "out")
    refused(result, "min_count: a request cannot change disclosure control")


# ---------------------------------------------------------------- paths, before any work

def test_link_refuses_a_folder_as_spine_at_once(world_bundles, tmp_path):
    started = time.monotonic()
    result = runner.invoke(app, ["link", "--spine", str(tmp_path), *map(str, world_bundles)])
    refused(result, "is a folder; --spine is the spine's DuckDB file")
    assert time.monotonic() - started < 5
    assert list(tmp_path.iterdir()) == []


def test_link_refuses_a_spine_under_a_file_and_a_missing_bundle(world_bundles, tmp_path):
    (tmp_path / "file").write_text("x")
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "file" / "s.duckdb"),
                                 *map(str, world_bundles)])
    refused(result, "is a file, not a folder")
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"),
                                 str(tmp_path / "no_bundle"), *map(str, world_bundles)])
    refused(result, "no_bundle: no such folder (a bundle)")
    assert not (tmp_path / "s.duckdb").exists()


def test_extract_checks_its_paths_first(linked_spine, world_bundles, tmp_path):
    spine, _ = linked_spine
    request = write_request(tmp_path / "r.yaml")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    (tmp_path / "a_file").write_text("mine")
    cases = [
        (spine, request, tmp_path / "full", "full: exists and is not empty"),
        (spine, request, tmp_path / "a_file", "a_file: exists and is a file"),
        (spine, tmp_path / "none.yaml", tmp_path / "o", "none.yaml: no such file (the request)"),
        (spine, tmp_path, tmp_path / "o", "is a folder; give the request file"),
        (tmp_path / "none.duckdb", request, tmp_path / "o", "no such spine"),
    ]
    for spine_path, request_path, out, words in cases:
        refused(extract(spine_path, world_bundles, request_path, out), words)
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    assert (tmp_path / "a_file").read_text() == "mine"
    assert not (tmp_path / "o").exists()


def test_evaluate_and_report_check_their_paths_first(linked_spine, linkage_key, tmp_path):
    spine, _ = linked_spine
    refused(runner.invoke(app, ["evaluate", "--spine", str(tmp_path), "--truth", str(tmp_path),
                                "--key", str(linkage_key)]), "is a folder; --spine")
    refused(runner.invoke(app, ["evaluate", "--spine", str(spine), "--truth",
                                str(tmp_path / "none"), "--key", str(linkage_key)]),
            "none: no such folder (a synthetic world's truth)")
    refused(runner.invoke(app, ["report", "--spine", str(spine), "--out", str(tmp_path)]),
            "is a folder; the report is a file")


def test_synth_refuses_to_overwrite_a_world(tmp_path):
    """Like demo: a world already written is never written over (a second seed would mix
    two worlds' files, and their truths, in one folder)."""
    out = tmp_path / "world"
    first = runner.invoke(app, ["synth", "--people", "100", "--seed", "1", "--out", str(out),
                                "--quiet"])
    assert first.exit_code == 0, first.output
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = runner.invoke(app, ["synth", "--people", "100", "--seed", "2", "--out", str(out),
                                "--quiet"])
    refused(again, "exists and is not empty; a synthetic world is never written over")
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


# ---------------------------------------------------------------- bounded YAML

LAUGHS = ("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
          + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join([f'*{chr(97 + i)}'] * 9)}]\n"
                    for i in range(8)))
HOSTILE_YAML = {   # name: (text, what the message says)
    "billion laughs": (LAUGHS, f"more than {MAX_VALUES:,} values once its aliases"),
    "deep lists": ("project: " + "[" * 5000 + "]" * 5000, f"more than {MAX_DEPTH} levels"),
    "deep mappings": ("".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x\n",
                      f"more than {MAX_DEPTH} levels"),
    "huge file": ("project: P1\n# " + "x" * MAX_BYTES + "\n", f"at most {MAX_BYTES:,}"),
    "self-reference": ("project: &p [*p]\n", "refers to a value that holds it"),
    "key twice": ("project: P1\nproject: P2\n", "key 'project' is given twice"),
    "not UTF-8": ("project: caf\udce9\n", "is not UTF-8 text"),
}


def write_yaml(path, text: str):
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    return path


@pytest.mark.parametrize("name", sorted(HOSTILE_YAML))
def test_a_hostile_request_is_refused_in_seconds(linked_spine, world_bundles, tmp_path, name):
    spine, _ = linked_spine
    text, words = HOSTILE_YAML[name]
    started = time.monotonic()
    result = extract(spine, world_bundles, write_yaml(tmp_path / "r.yaml", text),
                     tmp_path / "out")
    refused(result, "r.yaml: ", words)
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("name", ["billion laughs", "deep lists", "huge file",
                                  "self-reference", "key twice"])
def test_a_hostile_config_or_mapping_is_refused(tmp_path, name):
    text, words = HOSTILE_YAML[name]
    site = tmp_path / "site"
    site.mkdir()
    write_yaml(site / "disclosure.yaml", text)
    refused(runner.invoke(app, ["--config", str(site)]), "disclosure.yaml: ", words)
    data = tmp_path / "people.csv"
    data.write_text("id,name\n1,Ann\n")
    mapping = write_yaml(tmp_path / "mapping.yaml", text)
    refused(runner.invoke(app, ["check", "--source", "generic", "--mapping", str(mapping),
                                "--provider", "H1", str(data)]), "mapping.yaml", words)


@pytest.mark.parametrize(("project", "named"), [
    ("P" * 500_000, "project: must be at most 64"), ("P 0001", "project: must be at most 64"),
    ("../../etc", "project: must be"), (42, "project: must be"), ("", "project: must be"),
    (None, "project: required")])
def test_project_ids_are_names(linked_spine, world_bundles, tmp_path, project, named):
    """A 1 MB project id once kept an extract busy for 13 minutes (its file is now refused
    by its size too): a project id is at most 64 letters, digits, '_', '.' or '-', refused at
    once otherwise, and never echoed."""
    spine, _ = linked_spine
    started = time.monotonic()
    result = extract(spine, world_bundles, write_request(tmp_path / "r.yaml", project=project),
                     tmp_path / "out")
    message = refused(result, named)
    assert time.monotonic() - started < 10
    assert "PPPPPPPPPP" not in message
