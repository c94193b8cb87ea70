"""Fuzzing every reader through `linkage check`: random bytes, mutated real files, enormous
fields, deep XML. The outcome is always a clean exit 1 or a report with flagged rows, never a
crash, and never a hang: every case is bounded in time."""

import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
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
    assert time.monotonic() - started < SECONDS, (kind, "too slow")
    assert result.exit_code in (0, 1), (kind, result.output[-500:], repr(result.exception))
    assert "Traceback" not in result.output


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
