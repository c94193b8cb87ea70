"""Fuzzing every input a command takes: each reader through `linkage check` (random bytes,
mutated real files, enormous fields, deep XML, CIN and 903 XML variants, mixed encodings,
stray quotes), extract requests, bundle manifests (mutated and signed again), site configs,
and random bytes as each key. The outcome is always an answer (exit 0) or a clean refusal
(exit 1 with a message: SystemExit), never an internal error (any other exception), and
never a hang: every case is bounded in time. ``CORPUS`` counts the inputs run."""

import collections
import json
import shutil
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkage.cli import app

BAD = Path(__file__).parent / "data" / "bad"
SEEDS = {  # a good file of each kind, and where it goes in a provider's folder
    "ssda903": (BAD / "ssda903" / "lower_case_whitespace" / "2024" / "header.csv",
                "2024/header.csv"),
    "cin": (BAD / "cin" / "flags" / "2024.xml", "2024.xml"),
    "school-census": (BAD / "school_census" / "good" / "2024_pupils.csv", "2024_pupils.csv"),
    "asg-children": (BAD / "asg" / "awkward_header" / "asg_children.csv", "asg_children.csv"),
}
ASG_ADOPTERS = ("agency_code,adopter_id,household_ref,adopter_number,dob,gender,ethnicity,"
                "relationship_status,date_approved,date_matched,date_placed,children_matched\n"
                "RAA01,AD1,H1,1,1980-02-03,Female,WBRI,Married,2020-01-02,2021-03-04,,1\n"
                "RAA01,AD2,H1,2,1979-05-06,Male,WBRI,Married,2020-01-02,2021-03-04,,1\n")
SSDA903_XML = ("<EXPSSDA903><CHILD><HEADER><CHILD>1</CHILD><SEX>1</SEX><DOB>01/02/2015</DOB>"
               "<ETHNIC>WBRI</ETHNIC><UPN>A123456789012</UPN><MOTHER></MOTHER><MC_DOB></MC_DOB>"
               "</HEADER><EPISODE><CHILD>1</CHILD><DECOM>01/05/2023</DECOM><RNE>S</RNE>"
               "<LS>C2</LS><CIN>N1</CIN><PLACE>U1</PLACE><DEC></DEC><REC></REC>"
               "<HOME_POST>AB1 2CD</HOME_POST></EPISODE></CHILD></EXPSSDA903>")
SECONDS = 10  # a reader gives its answer within this, whatever the input
TEXT_SEEDS = {"asg-adopters": (ASG_ADOPTERS, "asg_adopters.csv"),
              "ssda903-xml": (SSDA903_XML, "2024/return.xml")}
runner = CliRunner()
FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
# inputs known to give an internal error: no shrinking (each example is a command run)
KNOWN = settings(FUZZ, phases=[Phase.explicit, Phase.reuse, Phase.generate])
CORPUS: collections.Counter = collections.Counter()   # input kind -> inputs run


@pytest.fixture(scope="module", autouse=True)
def corpus_count():
    """Print how many fuzz inputs ran, by kind (seen with pytest -s)."""
    yield
    print(f"\nfuzz corpus: {sum(CORPUS.values())} inputs: {dict(sorted(CORPUS.items()))}")


def clean(result, what: str, started: float) -> None:
    """An answer (exit 0) or a refusal with a message (exit 1, SystemExit), in time; any other
    exception is an internal error, whatever the exit code."""
    CORPUS[what] += 1
    assert time.monotonic() - started < SECONDS, (what, "too slow")
    assert result.exit_code in (0, 1), (what, result.output[-500:], repr(result.exception))
    if result.exit_code:
        assert isinstance(result.exception, SystemExit), (
            what, "internal error", repr(result.exception), result.output[-300:])
    assert "Traceback" not in result.output and "internal error" not in result.output


def outcome(kind: str, relative: str, content: bytes, folder: Path) -> None:
    """Check one file; the answer must be a report (0) or a clean refusal (1), in time."""
    path = folder / kind / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    target = folder / kind if kind.startswith("ssda903") else path
    kind = kind.removesuffix("-xml")
    started = time.monotonic()
    provider = [] if kind.startswith("asg") else ["--provider", "999"]  # ASG files name theirs
    result = runner.invoke(app, ["check", "--source", kind, *provider, "--period", "2024",
                                 "--json", str(target)])
    clean(result, f"reader {kind}", started)


def seed_bytes(kind: str) -> tuple[bytes, str]:
    if kind in TEXT_SEEDS:
        text, relative = TEXT_SEEDS[kind]
        return text.encode(), relative
    path, relative = SEEDS[kind]
    return path.read_bytes(), relative


KINDS = sorted([*SEEDS, *TEXT_SEEDS])


def mutate(data: bytes, cut: int, at: int, insert: bytes) -> bytes:
    """The file truncated at ``cut`` with ``insert`` put in at ``at``."""
    data = data[:max(1, cut % (len(data) + 1))]
    at = at % (len(data) + 1)
    return data[:at] + insert + data[at:]


@FUZZ
@given(content=st.binary(max_size=2000), kind=st.sampled_from(KINDS))
def test_random_bytes(tmp_path_factory, content, kind):
    outcome(kind, seed_bytes(kind)[1], content, tmp_path_factory.mktemp("bytes"))


@FUZZ
@given(kind=st.sampled_from(KINDS), cut=st.integers(0, 10**6), at=st.integers(0, 10**6),
       insert=st.one_of(st.binary(max_size=64),
                        st.sampled_from([b"\x00", b'"', b"\r", b"\n\n", b",,,,", b"<", b"]]>",
                                         b"&amp;", b"&#0;", b"\xff\xfe", "\u2028".encode(),
                                         b"=cmd|' /C calc'!A0"])))
def test_mutated_real_files(tmp_path_factory, kind, cut, at, insert):
    seed, relative = seed_bytes(kind)
    outcome(kind, relative, mutate(seed, cut, at, insert),
            tmp_path_factory.mktemp("mutated"))


def test_enormous_fields_and_lines(tmp_path):
    for kind in KINDS:
        text, relative = seed_bytes(kind)
        huge = b"A" * 5_000_000
        if kind in ("cin", "ssda903-xml"):
            tag = b"<LAchildID>" if kind == "cin" else b"<ETHNIC>"
            content = text.replace(tag, tag + huge, 1)
        else:
            lines = text.splitlines()
            content = b"\n".join([lines[0], lines[1] + b"," + huge, *lines[2:]])
        outcome(kind, relative, content, tmp_path / f"{kind}-huge")
        outcome(kind, relative, b"x" * 20_000_000, tmp_path / f"{kind}-one-line")


def test_deeply_nested_and_entity_laden_xml(tmp_path):
    deep = b"<Message>" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</Message>"
    outcome("cin", "2024.xml", deep, tmp_path / "deep")
    laughs = (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa">'
              + b"".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode()
                         for i in range(9))
              + b"]><Message>&j;</Message>")
    outcome("cin", "2024.xml", laughs, tmp_path / "laughs")
    external = (b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                b"<Message>&x;</Message>")
    outcome("cin", "2024.xml", external, tmp_path / "external")


def test_formulas_cannot_reach_a_csv_extract():
    import pandas as pd

    from linkage.release.extract import csv_safe

    frame = pd.DataFrame({"children": ["=HYPERLINK(\"http://x\")", "12", "-3", "+SUM(A1)"],
                          "@label": ["@cmd", "c", "x", "\tTAB"]},
                         index=["LA =1+1", "-LA", "LA 336", "ok"])
    safe = csv_safe(frame)
    assert safe.loc["LA =1+1", "children"] == "'=HYPERLINK(\"http://x\")"
    assert safe.loc["ok", "children"] == "'+SUM(A1)"
    assert list(safe.children[1:3]) == ["12", "-3"]           # numbers stay numbers
    assert list(safe.index) == ["LA =1+1", "'-LA", "LA 336", "ok"]
    assert list(safe.columns) == ["children", "'@label"] and safe.iloc[3, 1] == "'\tTAB"


# ---------------------------------------------------------------- XML and CSV variants

CIN_SEED = SEEDS["cin"][0].read_text(encoding="utf-8")


def cin_variant(namespace: bool, lower: bool, blocks: int, encoding: str, bom: bool) -> bytes:
    """The seed CIN return as LAs' software may write it: a default namespace, lower-case
    tags, its children split over several Children blocks, another declared encoding."""
    text = CIN_SEED
    if blocks > 1:
        text = text.replace("</Child>\n<Child>", "</Child>\n</Children>\n<Children>\n<Child>",
                            blocks - 1)
    if lower:
        text = text.replace("<Child>", "<child>").replace("</Child>", "</child>")
    if namespace:
        text = text.replace("<Message>", '<Message xmlns="http://www.dfe.gov.uk/CIN">', 1)
    text = text.replace('encoding="utf-8"', f'encoding="{encoding}"', 1)
    data = text.replace("Davison", "Dav\u00efson").encode(
        "utf-8" if encoding.lower() == "utf-8" else "cp1252", "replace")
    return (b"\xef\xbb\xbf" if bom else b"") + data


@FUZZ
@given(namespace=st.booleans(), lower=st.booleans(), blocks=st.integers(1, 4),
       encoding=st.sampled_from(["utf-8", "ISO-8859-1", "windows-1252", "UTF-16"]),
       bom=st.booleans())
def test_cin_xml_variants(tmp_path_factory, namespace, lower, blocks, encoding, bom):
    outcome("cin", "2024.xml", cin_variant(namespace, lower, blocks, encoding, bom),
            tmp_path_factory.mktemp("cin"))


def test_cin_xml_declaring_an_unknown_encoding(tmp_path):
    outcome("cin", "2024.xml", cin_variant(False, False, 1, "nonsense", False), tmp_path)


DFE_903 = ("<?xml version='1.0' encoding='us-ascii'?><EXPSSDA903><CHILD><HEADER>"
           "<CHILDID>907440</CHILDID><UPN>A123456789012</UPN><SEX>2</SEX><DOB>28/07/2010</DOB>"
           "<ETHNIC>BAFR</ETHNIC><UASC /><AREVIEW><REVIEW>27/09/2023</REVIEW><REVIEW_CODE>PN0"
           "</REVIEW_CODE></AREVIEW><MOTHER /><MC_DOB /><PERMANENCE><PREV_PERM>Z1</PREV_PERM>"
           "</PERMANENCE><OC2><SDQ_SCORE>21</SDQ_SCORE></OC2><AMISSING><MISSING>A</MISSING>"
           "<MIS_START>29/07/2023</MIS_START><MIS_END>15/09/2023</MIS_END></AMISSING></HEADER>"
           "<EPISODE><DECOM>06/01/2023</DECOM><RNE>T</RNE><LS>J3</LS><CIN>N4</CIN><PL>R5</PL>"
           "<PL_POST>E7 5YR</PL_POST><HOME_POST>B15 8PZ</HOME_POST><URN>1465167</URN><DEC />"
           "<REC>X1</REC></EPISODE></CHILD></EXPSSDA903>")
XML_903 = {"dfe layout": DFE_903, "older layout": SSDA903_XML, "empty": "",
           "root only": "<EXPSSDA903/>", "declaration only": "<?xml version='1.0'?>",
           "no episodes": DFE_903.split("<EPISODE>")[0] + "</CHILD></EXPSSDA903>",
           "children twice": DFE_903.replace("</EXPSSDA903>", DFE_903.split("?>")[1][12:]),
           "lower case": DFE_903.lower(), "utf-16": DFE_903}


@pytest.mark.parametrize("name", sorted(XML_903))
def test_903_xml_variants(tmp_path, name):
    text = XML_903[name]
    data = text.encode("utf-16") if name == "utf-16" else text.encode()
    outcome("ssda903-xml", "2024/return.xml", data, tmp_path)


@FUZZ
@given(kind=st.sampled_from(["school-census", "asg-children", "ssda903"]),
       rows=st.lists(st.integers(1, 50), min_size=1, max_size=5),
       damage=st.sampled_from(["cp1252 row", "stray quote", "quote at end", "both"]))
def test_mixed_encodings_and_stray_quotes(tmp_path_factory, kind, rows, damage):
    """Rows of one file in Windows-1252 among UTF-8 ones, and quotes left open."""
    seed, relative = seed_bytes(kind)
    lines = seed.decode("utf-8").split("\n")
    for row in rows:
        at = 1 + row % max(1, len(lines) - 1)
        line = lines[at].replace("a", "\u00e9", 1)
        if damage in ("stray quote", "both"):
            line = line.replace(",", ',"', 1)
        if damage == "quote at end":
            line += '"'
        lines[at] = line
    encoded = [line.encode("cp1252" if damage in ("cp1252 row", "both") and i % 2 else "utf-8",
                           "replace") for i, line in enumerate(lines)]
    outcome(kind, relative, b"\n".join(encoded), tmp_path_factory.mktemp("mixed"))


# ---------------------------------------------------------------- site configs

def leaves(value, path=()):
    """Every (path, value) of a YAML mapping's leaves and lists."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield from leaves(inner, (*path, key))
    if path:
        yield path, value


def set_at(data, path, value):
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


YAML_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**9, 10**9),
                        st.floats(allow_nan=True), st.text(max_size=20),
                        st.lists(st.integers(), max_size=3),
                        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))
CONFIGS = ["disclosure.yaml", "evaluation.yaml", "families.yaml", "linkage_schema.yaml",
           "release.yaml", "sources.yaml"]


@FUZZ
@given(name=st.sampled_from(CONFIGS), pick=st.integers(0, 10**6), value=YAML_VALUES)
def test_site_configs_with_wrong_values(tmp_path_factory, name, pick, value):
    """A packaged config with one value replaced by anything: validated by `linkage --config`,
    then used by a command (check reads sources.yaml and the linkage schema)."""
    from linkage.config import packaged_path

    data = yaml.safe_load(packaged_path(name).read_text(encoding="utf-8"))
    places = list(leaves(data))
    set_at(data, places[pick % len(places)][0], value)
    site = tmp_path_factory.mktemp("site")
    (site / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    seed = SEEDS["cin"][0]
    for command in ([], ["check", "--source", "cin", "--provider", "801", "--period", "2024",
                         "--json", str(seed)]):
        started = time.monotonic()
        clean(runner.invoke(app, ["--config", str(site), *command]), "config", started)


@FUZZ
@given(name=st.sampled_from(CONFIGS), cut=st.integers(0, 10**6), at=st.integers(0, 10**6),
       insert=st.sampled_from([b"\x00", b"&a ", b"*a", b": [", b"\n  - ", b"\t", b"\xff",
                               b"!!python/object:os.system", b"<<: *a\n", b"{", b"---\n"]))
def test_site_configs_with_mutated_text(tmp_path_factory, name, cut, at, insert):
    from linkage.config import packaged_path

    site = tmp_path_factory.mktemp("site")
    (site / name).write_bytes(mutate(packaged_path(name).read_bytes(), cut, at, insert))
    started = time.monotonic()
    clean(runner.invoke(app, ["--config", str(site)]), "config", started)


# ---------------------------------------------------------------- extract requests

REQUEST = {"project": "P0001", "cohort": "cla_any_point", "period": 2024,
           "datasets": {"ssda903": ["LS", "DECOM"], "cin": ["PrimaryNeedCode"]},
           "family_keys": True}


@pytest.fixture(scope="module")
def extract_inputs(linked_spine, world_bundles):
    return linked_spine[0], world_bundles


def run_extract(inputs, request: Path, folder: Path) -> None:
    spine, bundles = inputs
    started = time.monotonic()
    result = runner.invoke(app, ["extract", "--spine", str(spine), "--request", str(request),
                                 "--out", str(folder / "out"), "--quiet", *map(str, bundles)])
    clean(result, "request", started)


@settings(FUZZ, max_examples=15)
@given(key=st.sampled_from([*REQUEST, "min_count", "datasets.ssda903", "datasets.hospital"]),
       value=YAML_VALUES)
def test_requests_with_wrong_values(extract_inputs, tmp_path_factory, key, value):
    request = json.loads(json.dumps(REQUEST))
    set_at(request, key.split("."), value)
    folder = tmp_path_factory.mktemp("request")
    (folder / "r.yaml").write_text(yaml.safe_dump(request), encoding="utf-8")
    run_extract(extract_inputs, folder / "r.yaml", folder)


@settings(FUZZ, max_examples=15)
@given(content=st.one_of(st.binary(max_size=300), st.builds(
    mutate, st.just(yaml.safe_dump(REQUEST).encode()), st.integers(0, 10**6),
    st.integers(0, 10**6), st.sampled_from([b"&a ", b"*a", b"[", b"\x00", b"\xe9", b"{{",
                                            b"!!binary", b"? ", b"\n- "]))))
def test_requests_of_random_and_mutated_text(extract_inputs, tmp_path_factory, content):
    folder = tmp_path_factory.mktemp("request")
    (folder / "r.yaml").write_bytes(content)
    run_extract(extract_inputs, folder / "r.yaml", folder)


# ---------------------------------------------------------------- manifests and keys

@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory, keyring):
    """A real bundle of the CIN seed file (four children)."""
    folder = tmp_path_factory.mktemp("bundle")
    result = runner.invoke(app, ["hash", "--source", "cin", "--provider", "801", "--period",
                                 "2024", "--key", str(keyring.linkage_key), "--quiet", "--out",
                                 str(folder / "b"), str(SEEDS["cin"][0])])
    assert result.exit_code == 0, result.output
    return folder / "b"


def resigned(bundle: Path, manifest: dict, out: Path, keyring) -> Path:
    """A copy of ``bundle`` with ``manifest`` in place of its own, signed again by its
    provider: only the checks after the signature's can refuse it."""
    shutil.copytree(bundle, out)
    resign(out, manifest, keyring)
    return out


def resign(bundle: Path, manifest: object, keyring) -> None:
    from linkage.pseudonymise.bundle import MANIFEST, SIGNATURE
    from linkage.pseudonymise.signing import load_signing_key, sign

    text = json.dumps(manifest).encode()
    (bundle / MANIFEST).write_bytes(text)
    (bundle / SIGNATURE).write_text(json.dumps(sign(load_signing_key(keyring.signing_key),
                                                    text)))


MANIFEST_CHANGES = {"drop": ..., "null": None, "list": [], "text": "x"}
@pytest.fixture(scope="module")
def empty_spine(tmp_path_factory):
    """A spine with no version: report opens the bundles first, then stops cleanly."""
    from linkage.spine.store import connect

    path = tmp_path_factory.mktemp("spine") / "empty.duckdb"
    connect(path).close()
    return path


def changed_manifest(manifest: dict, path: tuple, change: str) -> dict:
    manifest = json.loads(json.dumps(manifest))
    parent = manifest
    for key in path[:-1]:
        parent = parent[key]
    if change == "drop":
        del parent[path[-1]]
    else:
        parent[path[-1]] = MANIFEST_CHANGES[change]
    return manifest


def report_on(bundle: Path, spine: Path, keyring, what: str) -> None:
    started = time.monotonic()
    result = runner.invoke(app, ["report", "--spine", str(spine), "--out",
                                 str(bundle.parent / "r.html"), "--custodian-key",
                                 str(keyring.custodian_key), "--quiet", str(bundle)])
    clean(result, what, started)


def test_mutated_signed_manifests(small_bundle, keyring, empty_spine, tmp_path):
    """Every value of a real manifest removed, or made null, a list or text, and the manifest
    signed again: the custodian's report refuses it or reads it."""
    original = json.loads((small_bundle / "manifest.json").read_text())
    bundle = resigned(small_bundle, original, tmp_path / "b", keyring)
    for path, _ in leaves(original):
        for change in MANIFEST_CHANGES:
            resign(bundle, changed_manifest(original, path, change), keyring)
            report_on(bundle, empty_spine, keyring, "manifest")


def key_file(folder: Path, content: bytes) -> Path:
    path = folder / "random.key"
    path.write_bytes(content)
    path.chmod(0o600)
    return path


@FUZZ
@given(content=st.one_of(st.binary(max_size=200), st.sampled_from([
    b"", b"\n", b"00" * 32, b"zz" * 32, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE "
    b"KEY-----\n", b"\xff" * 32])),
    role=st.sampled_from(["--key", "--sign-key", "--to-unit", "--to-custodian"]))
def test_random_bytes_as_each_providers_key(keyring, tmp_path_factory, content, role):
    folder = tmp_path_factory.mktemp("key")
    keys = {"--key": keyring.linkage_key, "--sign-key": keyring.signing_key,
            "--to-unit": keyring.unit_public, "--to-custodian": keyring.custodian_public}
    keys[role] = key_file(folder, content)
    options = [part for option, path in keys.items() for part in (option, str(path))]
    started = time.monotonic()
    result = runner.invoke(app, ["hash", "--source", "cin", "--provider", "801", "--period",
                                 "2024", "--quiet", "--out", str(folder / "b"), *options,
                                 str(SEEDS["cin"][0])])
    clean(result, "key", started)


@FUZZ
@given(content=st.binary(max_size=200), role=st.sampled_from(["unit", "register", "release"]))
def test_random_bytes_as_each_readers_key(keyring, small_bundle, linked_spine,
                                          tmp_path_factory, content, role):
    """The linkage unit's key (link), a register's public key, the custodian's release key
    (extract): refused before any work."""
    folder = tmp_path_factory.mktemp("key")
    spine = linked_spine[0]
    if role == "unit":
        command = ["link", "--spine", str(folder / "s.duckdb"), "--unit-key",
                   str(key_file(folder, content)), str(small_bundle)]
    elif role == "register":
        register = folder / "register"
        shutil.copytree(keyring.register, register)
        (register / "other.pub").write_bytes(content)
        command = ["report", "--spine", str(spine), "--out", str(folder / "r.html"),
                   "--register", str(register), "--custodian-key", str(keyring.custodian_key),
                   str(small_bundle)]
    else:
        request = folder / "r.yaml"
        request.write_text(yaml.safe_dump(REQUEST))
        command = ["extract", "--spine", str(spine), "--request", str(request), "--out",
                   str(folder / "out"), "--release-key", str(key_file(folder, content)),
                   str(small_bundle)]
    started = time.monotonic()
    clean(runner.invoke(app, command), "key", started)


def test_linking_too_few_records_to_train_is_a_message(small_bundle, tmp_path):
    started = time.monotonic()
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--quiet",
                                 str(small_bundle)])
    clean(result, "link", started)
