"""Every failure a message: each mistake below was an internal error (or a silent wrong answer)
and is now one line naming the file (and field), with exit code 1 and nothing half-written.

Each is a real CLI run on real files: keys, bundles and a spine of the session's synthetic
world, a site config folder, a full or size-limited disk, a read-only mount (as root; root
ignores file modes) or a read-only folder (as anyone else).
"""

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import packaged_path
from linkage.pipelines.delivery import provider_jobs
from linkage.pseudonymise.signing import load_signing_key, sign

runner = CliRunner()
REPO = Path(__file__).resolve().parent.parent
REQUEST = {"project": "P0001", "cohort": "cla_any_point", "period": 2024,
           "datasets": {"ssda903": ["LS", "PLACE"]}, "family_keys": True}


def squeezed(text: str) -> str:
    """Text without whitespace: the console wraps long lines wherever it likes."""
    return "".join(text.split())


def assert_refused(result, *expected: str) -> None:
    """Exit code 1 through a message (typer.Exit), saying each of ``expected``."""
    output = result.output
    assert "Traceback" not in output and "internal error" not in output, output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 1, output
    for text in expected:
        assert squeezed(text) in squeezed(output), output


def assert_process_refused(process: subprocess.CompletedProcess, *expected: str) -> None:
    """The same for a CLI run in its own process."""
    output = process.stdout + process.stderr
    assert "Traceback" not in output and "internal error" not in output, output
    assert process.returncode == 1, output
    for text in expected:
        assert squeezed(text) in squeezed(output), output


def linkage(*args) -> object:
    return runner.invoke(app, [*map(str, args)])


def run_process(args: list, preamble: str = "", cwd: Path | None = None
                ) -> subprocess.CompletedProcess:
    """``linkage ARGS`` in a new Python process, after ``preamble`` (Python code that changes
    the process: a resource limit, an import blocker)."""
    code = (f"{preamble}\nimport sys\nsys.argv = ['linkage', *{[str(a) for a in args]!r}]\n"
            "from linkage.cli import run\nrun()\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1",
           "COLUMNS": "400"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def file_size_limit(limit: int) -> str:
    """Preamble: files of this process may not grow beyond ``limit`` bytes (a real EFBIG from
    the kernel, as on a full disk), and SIGXFSZ does not kill it."""
    return ("import resource, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n")


def cin_job(world_dir: Path) -> tuple[str, str, list[Path], str]:
    return next(job for job in provider_jobs(world_dir / "providers") if job[0] == "cin")


def hash_args(world_dir: Path, linkage_key: Path, out: Path) -> list:
    kind, code, paths, _ = cin_job(world_dir)
    return ["hash", "--source", kind, "--provider", code, "--key", linkage_key, "--out", out,
            *paths]


def left_in(folder: Path) -> list[str]:
    """Every name under ``folder``, hidden temporaries included."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ---------------------------------------------------------------- keys: folders, wrong halves

def key_cases(keyring, world_dir, tmp_path) -> dict:
    """Each key option, the command it is given to (with what else the command needs to reach
    the key), and the key it wants."""
    dummy_spine = tmp_path / "spine.duckdb"
    dummy_spine.touch()
    (tmp_path / "r").write_text("project: P0001\n")  # a request, for extract to reach its key
    kind, code, paths, _ = cin_job(world_dir)
    hashing = ["hash", "--source", kind, "--provider", code, "--out", tmp_path / "b", *paths]
    return {
        "--key": (hashing, "linkage key"),
        "--sign-key": ([*hashing, "--key", keyring.linkage_key], "private signing key"),
        "--to-unit": ([*hashing, "--key", keyring.linkage_key], "linkage unit's public key"),
        "--to-custodian": ([*hashing, "--key", keyring.linkage_key],
                           "data custodian's public key"),
        "--unit-key": (["link", "--spine", tmp_path / "new.duckdb", tmp_path],
                       "linkage unit's private key"),
        "--custodian-key": (["extract", "--spine", dummy_spine, "--request", tmp_path / "r",
                             "--out", tmp_path / "e", tmp_path], "data custodian's private key"),
        "evaluate --key": (["evaluate", "--spine", dummy_spine, "--truth", tmp_path],
                           "linkage key"),
        "report --custodian-key": (["report", "--spine", dummy_spine, "--out",
                                    tmp_path / "r.html", tmp_path],
                                   "data custodian's private key"),
    }


KEY_OPTIONS = ["--key", "--sign-key", "--to-unit", "--to-custodian", "--unit-key",
               "--custodian-key", "evaluate --key", "report --custodian-key"]


@pytest.mark.parametrize("option", KEY_OPTIONS)
def test_a_folder_given_as_a_key(option, keyring, world_dir, tmp_path):
    args, wanted = key_cases(keyring, world_dir, tmp_path)[option]
    folder = tmp_path / "keys"
    folder.mkdir()
    result = linkage(*args, option.split()[-1], folder)
    assert_refused(result, f"{folder}: is a folder; give the {wanted} file")


@pytest.mark.parametrize("option", ["--key", "--sign-key", "--unit-key", "--custodian-key",
                                    "evaluate --key", "report --custodian-key"])
def test_a_public_key_given_for_a_private_one(option, keyring, world_dir, tmp_path):
    # once told to chmod 600 a public key, which no mode makes the key wanted
    args, wanted = key_cases(keyring, world_dir, tmp_path)[option]
    result = linkage(*args, option.split()[-1], keyring.unit_public)
    assert_refused(result, f"{keyring.unit_public}: is a public key; give the {wanted}")
    assert "chmod" not in result.output


@pytest.mark.parametrize("option", ["--to-unit", "--to-custodian"])
def test_a_private_key_given_for_a_public_one(option, keyring, world_dir, tmp_path):
    args, wanted = key_cases(keyring, world_dir, tmp_path)[option]
    result = linkage(*args, option, keyring.unit_key)
    assert_refused(result, f"{keyring.unit_key}: is a private key; give the {wanted}")


def test_a_file_given_as_the_register(keyring, world_bundles, tmp_path):
    result = linkage("link", "--spine", tmp_path / "s.duckdb", "--register",
                     keyring.unit_public, *world_bundles)
    assert_refused(result, f"{keyring.unit_public}: is a file; give the register folder")
    assert not (tmp_path / "s.duckdb").exists()


def test_a_folder_or_public_key_given_as_the_release_key(linked_spine, world_bundles,
                                                         keyring, tmp_path):
    spine, _ = linked_spine
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUEST))
    for given, said in ((tmp_path, "is a folder; give the release key file"),
                        (keyring.unit_public, "is a public key; give the release key")):
        result = linkage("extract", "--spine", spine, "--request", request, "--out",
                         tmp_path / "out", "--release-key", given, *world_bundles)
        assert_refused(result, f"{given}: {said}")
        assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- extract: a part of the bundles

def test_an_extract_from_a_part_of_the_bundles_is_refused(linked_spine, world_bundles,
                                                          tmp_path):
    # it once failed with "'DataFrame' object has no attribute 'REC'", or counted a cohort
    # from the bundles given only: a silently smaller answer
    spine, summary = linked_spine
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUEST))
    given = [b for b in world_bundles if b.name.endswith("_cin")]
    missing = sorted(str(b) for b in world_bundles if b not in given)
    result = linkage("extract", "--spine", spine, "--request", request, "--out",
                     tmp_path / "out", *given)
    assert_refused(result, f"{spine}: version {summary['version']} was linked from "
                           f"{len(world_bundles)} bundles and {len(missing)} of them were "
                           f"not given ({missing[0]}, {missing[1]}",
                   "give every bundle the version was linked from")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- the Spark backend missing

BLOCK_PYSPARK = """
import sys


class NoPyspark:
    '''An import finder that makes pyspark not installed, for this process only.'''

    def find_spec(self, name, path=None, target=None):
        if name == "pyspark" or name.startswith("pyspark."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NoPyspark())
"""


def test_the_spark_backend_without_pyspark(world_bundles, tmp_path):
    spine = tmp_path / "spine.duckdb"
    process = run_process(["link", "--spine", spine, "--backend", "spark", "--quiet",
                           *world_bundles], BLOCK_PYSPARK)
    assert_process_refused(process, "the Spark backend needs pyspark: pip install "
                                    "'linkage[spark]'")
    assert left_in(tmp_path) == []  # refused before any work: no spine, no lock


# ---------------------------------------------------------------- site configs of wrong types

def site_file(folder: Path, name: str, change) -> None:
    """The packaged ``name`` with ``change`` applied, in the site folder ``folder``."""
    data = yaml.safe_load(packaged_path(name).read_text(encoding="utf-8"))
    change(data)
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(yaml.safe_dump(data), encoding="utf-8")


def _set(path: str, value):
    def change(data):
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        data[last] = value
    return change


CONFIG_CASES = [
    ("disclosure.yaml", "min_count", "6", "min_count: must be a whole number (found text '6')"),
    ("disclosure.yaml", "national_rounding", -10,
     "national_rounding: must be at least 1 (found -10)"),
    ("disclosure.yaml", "suppressed", None, "suppressed: must be text (found nothing)"),
    ("release.yaml", "datasets", ["ssda903"], "datasets: must be a mapping (found a list)"),
    ("release.yaml", "cohorts", {"a": 1}, "cohorts: must be a list (found a mapping)"),
    ("families.yaml", "siblings", None, "siblings: must be a mapping (found nothing)"),
    ("families.yaml", "siblings.min_confidence", "high",
     "siblings.min_confidence: must be a number (found text 'high')"),
    ("sources.yaml", "max_child_age", 18.5, "max_child_age: must be a whole number"),
    ("sources.yaml", "upn", ["a"], "upn: must be a mapping (found a list)"),
    ("synthetic.yaml", "geography.people_per_la", -100,
     "geography.people_per_la: must be at least 1 (found -100)"),
    ("synthetic.yaml", "calendar.years", "ten",
     "calendar.years: must be a whole number (found text 'ten')"),
    ("linkage_schema.yaml", "match.max_pairs_per_record", "50",
     "match.max_pairs_per_record: must be a whole number (found text '50')"),
    ("linkage_schema.yaml", "tokens", None, "tokens: must be a mapping (found nothing)"),
    ("linkage_schema.yaml", "bloom.hashes", -3, "bloom.hashes: must be at least 1 (found -3)"),
    ("attack_limits.yaml", "exact_dob", [0.1], "exact_dob: must be a number (found a list)"),
]


@pytest.mark.parametrize(("name", "field", "value", "message"), CONFIG_CASES,
                         ids=[f"{c[0]}:{c[1]}" for c in CONFIG_CASES])
def test_a_config_value_of_the_wrong_type(name, field, value, message, tmp_path):
    site = tmp_path / "site"
    site_file(site, name, _set(field, value))
    result = linkage("--config", site)
    assert_refused(result, f"{site / name}: {message}")


# ---------------------------------------------------------------- malformed manifests

@pytest.fixture
def bundle_copy(world_bundles, tmp_path) -> Path:
    source = next(b for b in world_bundles if b.name.endswith("_cin"))
    copy = tmp_path / "bundles" / source.name
    shutil.copytree(source, copy)
    return copy


def resign(bundle: Path, text: str, signing_key: Path) -> None:
    """Write ``text`` as the bundle's manifest, signed with the provider's key, so that it
    passes the signature check and reaches the manifest's parser."""
    (bundle / "manifest.json").write_text(text, encoding="utf-8")
    signature = sign(load_signing_key(signing_key), text.encode("utf-8"))
    (bundle / "manifest.sig").write_text(json.dumps(signature) + "\n", encoding="utf-8")


def edited(bundle: Path, change) -> str:
    manifest = json.loads((bundle / "manifest.json").read_text(encoding="utf-8"))
    change(manifest)
    return json.dumps(manifest, indent=2)


def _drop(*path: str):
    def change(manifest):
        for key in path[:-1]:
            manifest = manifest[key]
        del manifest[path[-1]]
    return change


MANIFEST_CASES = {
    "not JSON": (lambda bundle: '{"bundle_format": 2, "rows": ', "manifest.json is not JSON"),
    "not an object": (lambda bundle: "[2, 3]\n",
                      "manifest.json must be a JSON object (found a list)"),
    "no parts": (lambda bundle: edited(bundle, _drop("parts")),
                 "manifest.json: parts: required but missing"),
    "no row count": (lambda bundle: edited(bundle, _drop("rows", "out")),
                     "manifest.json: rows.out: required but missing"),
    "rows as text": (lambda bundle: edited(bundle, _set("rows.out", "178")),
                     "manifest.json: rows.out: must be a whole number (found text '178')"),
    "parts a list": (lambda bundle: edited(bundle, _set("parts", ["linkage.part"])),
                     "manifest.json: parts: must be a mapping (found a list)"),
    "provider a number": (lambda bundle: edited(bundle, _set("provider", 836)),
                          "manifest.json: provider: must be a list (found 836)"),
    "a part that is not there": (
        lambda bundle: edited(bundle, _set("parts.linkage.file", "tokens.part")),
        "manifest.json: parts.linkage.file: must be linkage.part (found 'tokens.part')"),
    "a bad checksum": (lambda bundle: edited(bundle, _set("parts.content.sha256", "xyz")),
                       "manifest.json: parts.content.sha256: must match"),
    "a wrong checksum": (
        lambda bundle: edited(bundle, _set("parts.linkage.sha256", "0" * 64)),
        "linkage.part does not match its checksum in the signed manifest"),
}


@pytest.mark.parametrize("case", list(MANIFEST_CASES))
def test_a_malformed_manifest(case, bundle_copy, keyring, tmp_path):
    make, message = MANIFEST_CASES[case]
    resign(bundle_copy, make(bundle_copy), keyring.signing_key)
    spine = tmp_path / "spine.duckdb"
    result = linkage("link", "--spine", spine, "--quiet", bundle_copy)
    assert_refused(result, f"{bundle_copy}:", message)
    assert not spine.exists()


def test_a_missing_part_file(bundle_copy, tmp_path):
    (bundle_copy / "linkage.part").unlink()
    result = linkage("link", "--spine", tmp_path / "spine.duckdb", "--quiet", bundle_copy)
    assert_refused(result, f"{bundle_copy}: linkage.part cannot be read (No such file or "
                           "directory); the bundle is incomplete")


# ---------------------------------------------------------------- extract requests

@pytest.mark.parametrize(("content", "message"), [
    ("project: P\xe9\n".encode("latin-1"),
     "is not UTF-8 text (byte 11 cannot be decoded); save it as UTF-8"),
    (b"", "is empty; a request is a mapping of project, cohort, period, datasets"),
    (b"# nothing but a comment\n", "is empty"),
    (b"- project: P0001\n- cohort: cla_any_point\n",
     "must be a mapping of project, cohort, period, datasets (found a list)"),
    (b"P0001\n", "must be a mapping of project, cohort, period, datasets (found text)"),
], ids=["not UTF-8", "empty", "only a comment", "a list", "text"])
def test_a_bad_request_file(content, message, tmp_path):
    spine = tmp_path / "spine.duckdb"
    spine.touch()  # the request is read before the spine
    request = tmp_path / "request.yaml"
    request.write_bytes(content)
    result = linkage("extract", "--spine", spine, "--request", request, "--out",
                     tmp_path / "out", tmp_path)
    assert_refused(result, f"{request}: {message}")


def test_a_folder_given_as_the_request(tmp_path):
    spine = tmp_path / "spine.duckdb"
    spine.touch()
    result = linkage("extract", "--spine", spine, "--request", tmp_path, "--out",
                     tmp_path / "out", tmp_path)
    assert_refused(result, f"{tmp_path}: is a folder; give the request file")


def test_a_key_whose_folder_is_a_file(tmp_path):
    (tmp_path / "keys").write_text("not a folder\n")
    out = tmp_path / "keys" / "new.key"
    result = linkage("keygen", "--out", out)
    assert_refused(result, f"{out}: cannot be written: a part of the path is a file, not a "
                           "folder")


# ---------------------------------------------------------------- a full disk

TOO_LARGE = "cannot be written: the file would be larger than this system allows"


@pytest.mark.parametrize("kind", [[], ["--keypair"], ["--signing"]], ids=["key", "keypair",
                                                                            "signing"])
def test_keygen_beyond_the_file_size_limit_leaves_no_key(kind, tmp_path):
    # once left a 0-byte key file, which a later run would take for a key
    out = tmp_path / "keys" / "new.key"
    process = run_process(["keygen", "--out", out, *kind], file_size_limit(16))
    assert_process_refused(process, f"{out}: {TOO_LARGE}", "nothing was left half-written")
    assert left_in(tmp_path / "keys") == []


def test_hash_beyond_the_file_size_limit_leaves_no_bundle(world_dir, linkage_key, tmp_path):
    out = tmp_path / "bundles" / "la_cin"
    process = run_process(hash_args(world_dir, linkage_key, out), file_size_limit(2048))
    assert_process_refused(process, f"{out}: {TOO_LARGE}")
    assert left_in(tmp_path / "bundles") == []


def test_outputs_beyond_the_file_size_limit_leave_nothing(linked_spine, world_bundles,
                                                          world_dir, tmp_path):
    spine, _ = linked_spine
    out = tmp_path / "out"
    out.mkdir()
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUEST))
    kind, _, paths, _ = cin_job(world_dir)
    commands = {
        out / "report.html": ["report", "--spine", spine, "--out", out / "report.html"],
        out / "check.md": ["check", "--source", kind, "--report", out / "check.md", *paths],
        out / "extract": ["extract", "--spine", spine, "--request", request, "--out",
                          out / "extract", *world_bundles],
    }
    for target, args in commands.items():
        process = run_process(args, file_size_limit(1024))
        assert_process_refused(process, f"{target}: {TOO_LARGE}")
        assert left_in(out) == [], target


@pytest.fixture
def full_disk(tmp_path):
    """A tiny file system (tmpfs, as root) filled to the last byte: writes fail with ENOSPC."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root; the file size limit tests "
                    "cover the same writes")
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
                             capture_output=True)
    if mounted.returncode:
        pytest.skip("tmpfs cannot be mounted here")
    try:
        with open(disk / "filler", "wb", buffering=0) as handle:
            try:
                while True:
                    handle.write(b"\0" * 4096)
            except OSError as problem:
                assert problem.errno == errno.ENOSPC
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def test_a_full_disk(full_disk, world_dir, linkage_key):
    key = full_disk / "new.key"
    result = linkage("keygen", "--out", key)
    assert_refused(result, f"{key}: cannot be written: the disk is full")
    out = full_disk / "bundle"
    result = linkage(*hash_args(world_dir, linkage_key, out))
    assert_refused(result, f"{out}: cannot be written: the disk is full",
                   "nothing was left half-written")
    assert left_in(full_disk) == ["filler"]


# ---------------------------------------------------------------- read-only folders and spines

class ReadOnly:
    """A folder to fill, then make read-only: a read-only mount as root (root ignores file
    modes), else file modes."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir()
        self.mounted = os.geteuid() == 0
        if self.mounted and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs",
                                            str(folder)], capture_output=True).returncode:
            pytest.skip("running as root, and tmpfs cannot be mounted here")

    def seal(self) -> None:
        if self.mounted:
            subprocess.run(["mount", "-o", "remount,ro", str(self.folder)], check=True)
            return
        for path in [*self.folder.rglob("*"), self.folder]:
            path.chmod(path.stat().st_mode & ~0o222)

    def release(self) -> None:
        if self.mounted:
            subprocess.run(["umount", str(self.folder)], check=True)
            return
        for path in [self.folder, *self.folder.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


@pytest.fixture
def read_only(tmp_path):
    folder = ReadOnly(tmp_path / "read-only")
    yield folder
    folder.release()


READ_ONLY = "cannot be written: "


def test_outputs_into_a_read_only_folder(read_only, linked_spine, world_bundles, world_dir,
                                         linkage_key, tmp_path):
    read_only.seal()
    folder = read_only.folder
    spine, _ = linked_spine
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUEST))
    kind, _, paths, _ = cin_job(world_dir)
    commands = {
        folder / "new.key": ["keygen", "--out", folder / "new.key"],
        folder / "unit.key": ["keygen", "--keypair", "--out", folder / "unit.key"],
        folder / "bundle": hash_args(world_dir, linkage_key, folder / "bundle"),
        folder / "report.html": ["report", "--spine", spine, "--out", folder / "report.html"],
        folder / "check.md": ["check", "--source", kind, "--report", folder / "check.md",
                              *paths],
        folder / "extract": ["extract", "--spine", spine, "--request", request, "--out",
                             folder / "extract", *world_bundles],
    }
    for target, args in commands.items():
        assert_refused(linkage(*args), f"{target}: {READ_ONLY}", "choose a")
    # a plugin command (synth) is covered by the same one place
    result = linkage("synth", "--people", 200, "--seed", 1, "--out", folder / "world")
    assert_refused(result, f"{folder / 'world'}: ", "choose a")
    assert left_in(folder) == []


def test_a_read_only_spine_can_be_read(read_only, linked_spine, world_bundles, world_dir,
                                       linkage_key, tmp_path):
    spine, _ = linked_spine
    copy = read_only.folder / spine.name
    shutil.copy2(spine, copy)
    read_only.seal()
    result = linkage("report", "--spine", copy, "--out", tmp_path / "report.html")
    assert result.exit_code == 0, result.output
    result = linkage("evaluate", "--spine", copy, "--truth", world_dir / "truth", "--key",
                     linkage_key, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pairwise"]["precision"] > 0.9
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUEST))
    result = linkage("extract", "--spine", copy, "--request", request, "--out",
                     tmp_path / "extract", *world_bundles)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "extract" / "manifest.json").is_file()
    assert squeezed(f"{copy} is read-only: this extract is not in its audit log") in \
        squeezed(result.output)
    assert left_in(read_only.folder) == [spine.name]  # no lock, no write-ahead log


def test_a_writable_spine_still_logs_an_extract(linked_spine, world_bundles, tmp_path):
    spine, _ = linked_spine
    copy = tmp_path / spine.name
    shutil.copy2(spine, copy)
    request = tmp_path / "request.yaml"
    request.write_text(yaml.safe_dump(REQUEST))
    result = linkage("extract", "--spine", copy, "--request", request, "--out",
                     tmp_path / "extract", *world_bundles)
    assert result.exit_code == 0, result.output
    assert "read-only" not in result.output
    import duckdb

    with duckdb.connect(str(copy), read_only=True) as con:
        commands = [row[0] for row in con.execute("SELECT command FROM audit_log").fetchall()]
    assert commands == ["link", "extract"]


def test_a_file_that_is_not_a_spine(tmp_path):
    import duckdb

    other = tmp_path / "other.duckdb"
    with duckdb.connect(str(other)) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
    result = linkage("report", "--spine", other, "--out", tmp_path / "r.html")
    assert_refused(result, f"{other}: is not a spine")



def test_a_spine_beyond_the_file_size_limit_gets_no_version(linked_spine, world_bundles,
                                                            tmp_path):
    # DuckDB fails to commit, then to roll back: both once an internal error
    spine, _ = linked_spine
    new = tmp_path / "spine.duckdb"
    model = spine.with_name(spine.name + ".model.json")
    process = run_process(["link", "--spine", new, "--quiet", "--model", model,
                           *world_bundles], file_size_limit(1 << 20))
    assert_process_refused(process, f"{new}: cannot be written: the file would be larger",
                           "its previous version is unchanged")
    result = linkage("report", "--spine", new, "--out", tmp_path / "report.html")
    assert_refused(result, f"{new}: has no linked version yet")
