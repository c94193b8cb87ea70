"""The files LAs actually send: CIN XML in any layout, mixed encodings, stray quotes, provider
codes in any case, and school census files that share a year (issue 17).

Every test writes real files and reads them through `read_source` or the CLI, and compares the
awkward file's records with those of the same data written plainly: nothing lost, nothing
altered, and the awkward rows flagged where the file is at fault.
"""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkage.cli import app
from linkage.sources import SourceError, read_source
from linkage.sources.values import upn_check_letter

runner = CliRunner()
IDENTITY = ["record_id", "upn", "dob", "sex", "ethnicity", "forename", "surname", "flags"]
# names that differ between UTF-8 and Windows-1252 bytes
NAMES = ["Zoé", "Muñoz", "O\u2019Brien", "Siân", "Brontë", "José"]
CIN_NAMESPACE = "http://www.dcsf.gov.uk/schemas/cbds"


def valid_upns(count: int, la: str = "836") -> list[str]:
    """Well-formed UPNs of a real LA number, each with its right check letter."""
    bodies = pd.Series([f"A{la}{n:09d}" for n in range(1, count + 1)])
    return (upn_check_letter(bodies) + bodies.str[1:]).tolist()


# ------------------------------------------------------------------ CIN XML


def cin_child(number: int, upn: str) -> str:
    return ("<Child><ChildIdentifiers>"
            f"<LAchildID>C{number:05d}</LAchildID><UPN>{upn}</UPN>"
            f"<PersonBirthDate>2015-0{1 + number % 9}-1{number % 10}</PersonBirthDate>"
            f"<GenderCurrent>{1 + number % 2}</GenderCurrent></ChildIdentifiers>"
            "<ChildCharacteristics><Ethnicity>WBRI</Ethnicity></ChildCharacteristics>"
            "<CINdetails><CINreferralDate>2023-06-01</CINreferralDate>"
            "<ReferralSource>1A</ReferralSource><PrimaryNeedCode>N1</PrimaryNeedCode>"
            "<ChildProtectionPlans><CPPstartDate>2023-07-01</CPPstartDate>"
            "</ChildProtectionPlans></CINdetails></Child>")


def cin_xml(children: int = 94, blocks: int = 1, root: str = "<Message>") -> str:
    """A CIN census return of LA 836 for 2024, its children in ``blocks`` Children blocks."""
    kids = [cin_child(n, upn) for n, upn in enumerate(valid_upns(children), start=1)]
    per_block = -(-len(kids) // blocks) if kids else 0
    body = "".join(f"<Children>{''.join(kids[i:i + per_block])}</Children>"
                   for i in range(0, max(len(kids), 1), max(per_block, 1)))
    return ('<?xml version="1.0" encoding="utf-8"?>\n' + root +
            "<Header><CollectionDetails><Collection>CIN</Collection><Year>2024</Year>"
            "</CollectionDetails><Source><LEA>836</LEA></Source></Header>\n"
            + body + "</Message>")


def with_prefix(xml: str, prefix: str) -> str:
    """Every element of ``xml`` in the CIN namespace under ``prefix`` (``<cin:Child>``)."""
    xml = re.sub(r"<(/?)([A-Za-z]\w*)", rf"<\1{prefix}:\2", xml)
    return re.sub(f"<{prefix}:(message)>", rf'<{prefix}:\1 xmlns:{prefix}="{CIN_NAMESPACE}">',
                  xml, count=1, flags=re.IGNORECASE)


def with_cased_names(xml: str, case) -> str:
    """``xml`` with every element name put through ``case`` (str.lower, str.upper, ...)."""
    return re.sub(r"<(/?)([A-Za-z]\w*)", lambda m: f"<{m.group(1)}{case(m.group(2))}", xml)


def cin_records(tmp_path: Path, xml: str, name: str = "2024.xml") -> pd.DataFrame:
    path = tmp_path / name
    path.write_text(xml, encoding="utf-8")
    return read_source("cin", [path]).records


@pytest.fixture(scope="module")
def plain_cin(tmp_path_factory) -> pd.DataFrame:
    return cin_records(tmp_path_factory.mktemp("cin"), cin_xml())


def same_children(records: pd.DataFrame, plain: pd.DataFrame) -> None:
    assert len(records) == len(plain) == 94
    pd.testing.assert_frame_equal(records[IDENTITY], plain[IDENTITY])


@pytest.mark.parametrize("blocks", [2, 3, 94])
def test_cin_children_of_every_block_are_read(tmp_path, plain_cin, blocks):
    """A second Children block once halved the children (94 -> 47)."""
    same_children(cin_records(tmp_path, cin_xml(blocks=blocks)), plain_cin)


@pytest.mark.parametrize("layout", ["default namespace", "prefixed", "lower case", "upper case"])
def test_cin_children_are_read_in_any_namespace_and_case(tmp_path, plain_cin, layout):
    """A namespaced or lower-case <Child> once gave 0 children and an empty bundle, exit 0."""
    xml = {
        "default namespace": cin_xml(root=f'<Message xmlns="{CIN_NAMESPACE}">'),
        "prefixed": with_prefix(cin_xml(), "cbds"),
        "lower case": with_cased_names(cin_xml(), str.lower),
        "upper case": with_cased_names(cin_xml(), str.upper),
    }[layout]
    records = cin_records(tmp_path, xml)
    same_children(records, plain_cin)
    assert (records.provider == "836").all() and (records.period == 2024).all()


ELEMENT_NAMES = sorted(set(re.findall(r"<([A-Za-z]\w*)", cin_xml(children=1))))


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from([str.upper, str.lower, str.swapcase, str.title]),
                min_size=len(ELEMENT_NAMES), max_size=len(ELEMENT_NAMES)))
def test_cin_names_in_any_mix_of_cases_read_alike(tmp_path, plain_cin, cases):
    """Each element name in a case of its own, at random: the same children."""
    case_of = dict(zip(ELEMENT_NAMES, cases, strict=True))
    xml = with_cased_names(cin_xml(), lambda name: case_of[name](name))
    same_children(cin_records(tmp_path, xml), plain_cin)


def test_cin_content_is_read_in_any_layout(tmp_path):
    """The referral and plan details come along with the children, whatever the layout."""
    path = tmp_path / "2024.xml"
    path.write_text(with_prefix(with_cased_names(cin_xml(blocks=2), str.upper), "cin"),
                    encoding="utf-8")
    data = read_source("cin", [path])
    details = data.content["cin_details"]
    assert len(details) == 94
    assert str(details.CINreferralDate.iloc[0]) == "2023-06-01"
    plans = data.content["child_protection_plans"]
    assert str(plans.CPPstartDate.iloc[0]) == "2023-07-01"
    assert str(plans.CINreferralDate.iloc[0]) == "2023-06-01"


def test_every_plan_of_an_episode_is_read_in_the_census_layout(tmp_path):
    """CINdetails holds 0..n ChildProtectionPlans groups, each with its own Reviews (the
    census guide's layout): every plan is a row, tied to its episode by the referral date."""
    plans = "".join(
        f"<ChildProtectionPlans><CPPstartDate>{start}</CPPstartDate>{end}"
        f"<InitialCategoryOfAbuse>PHY</InitialCategoryOfAbuse>"
        f"<LatestCategoryOfAbuse>{latest}</LatestCategoryOfAbuse>"
        f"<NumberOfPreviousCPP>{previous}</NumberOfPreviousCPP>"
        f"<Reviews><CPPreviewDate>{review}</CPPreviewDate></Reviews></ChildProtectionPlans>"
        for start, end, latest, previous, review in (
            ("2023-07-01", "<CPPendDate>2023-10-01</CPPendDate>", "NEG", 0, "2023-08-01"),
            ("2024-01-05", "", "EMO", 1, "2024-02-01")))
    one_plan = ("<ChildProtectionPlans><CPPstartDate>2023-07-01</CPPstartDate>"
                "</ChildProtectionPlans>")
    xml = cin_xml(children=1).replace(one_plan, plans)
    path = tmp_path / "2024.xml"
    path.write_text(xml, encoding="utf-8")
    read = read_source("cin", [path]).content["child_protection_plans"]
    assert read.CPPstartDate.astype(str).tolist() == ["2023-07-01", "2024-01-05"]
    assert read.LatestCategoryOfAbuse.tolist() == ["NEG", "EMO"]
    assert read.NumberOfPreviousCPP.tolist() == ["0", "1"]
    assert read.CPPendDate.isna().tolist() == [False, True]
    assert read.CINreferralDate.astype(str).eq("2023-06-01").all()


@pytest.mark.parametrize("xml", [cin_xml(children=0), with_cased_names(
    cin_xml(), lambda name: "Kid" if name == "Child" else name)], ids=["empty", "other name"])
def test_a_cin_file_without_a_child_is_refused_by_check_and_hash(tmp_path, linkage_key, xml):
    """No child found is a message naming the file (exit 1), never an empty bundle."""
    path = tmp_path / "2024.xml"
    path.write_text(xml, encoding="utf-8")
    checked = runner.invoke(app, ["check", "--source", "cin", str(path)])
    hashed = runner.invoke(app, ["hash", "--source", "cin", "--provider", "836", "--key",
                                 str(linkage_key), "--out", str(tmp_path / "b"), str(path)])
    for result in (checked, hashed):
        assert result.exit_code == 1, result.output
        assert isinstance(result.exception, SystemExit)
        assert f"{path}: holds no <Child>" in " ".join(result.output.split())
    assert not (tmp_path / "b").exists()


# ------------------------------------------------------------------ encodings


def pupils(count: int = 200, forenames: list[str] | None = None) -> pd.DataFrame:
    """School census rows: valid UPNs, names (some from NAMES), DOBs, sex, postcodes."""
    forenames = forenames or [NAMES[i % len(NAMES)] if i % 2 else f"Kim{i}" for i in
                              range(count)]  # an ASCII line is alike in both encodings
    return pd.DataFrame({
        "upn": valid_upns(count), "surname": [f"Smith{i}" for i in range(count)],
        "forename": forenames, "dob": [f"2014-0{1 + i % 9}-1{i % 10}" for i in range(count)],
        "sex": ["M", "F"][0:1] * count, "ethnicity": "WBRI", "postcode": "LS12 3AB"})


def csv_lines(rows: pd.DataFrame) -> list[str]:
    return [",".join(rows.columns)] + [",".join(map(str, row)) for row in rows.itertuples(
        index=False)]


def write_lines(path: Path, lines: list[str], encodings: list[str] | str = "utf-8",
                end: str = "\r\n") -> Path:
    """``lines`` (the header first) as a file, each line in its own encoding."""
    if isinstance(encodings, str):
        encodings = [encodings] * len(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join((line + end).encode(enc) for line, enc in
                              zip(lines, encodings, strict=True)))
    return path


def census_records(path: Path) -> pd.DataFrame:
    return read_source("school-census", [path]).records


def with_flag(flags: pd.Series, rows, code: str) -> pd.Series:
    """``flags`` with ``code`` added on ``rows`` (in the order the readers join them)."""
    out = flags.copy()
    for row in rows:
        out.iloc[row] = code if not out.iloc[row] else out.iloc[row] + ";" + code
    return out


@pytest.mark.parametrize("end", ["\r\n", "\n", "\r"], ids=["CRLF", "LF", "CR"])
def test_a_file_mixing_utf8_and_windows_1252_rows_keeps_every_name(tmp_path, end):
    """100 rows in UTF-8, 100 in Windows-1252 (a file pasted from two systems): every name as
    written, the Windows-1252 rows flagged encoding_mixed (once: 100 forenames altered, no
    flag)."""
    rows = pupils(forenames=[NAMES[i % len(NAMES)] for i in range(200)])
    lines = csv_lines(rows)
    legacy = [i for i in range(len(rows)) if i % 4 in (1, 2)]  # every name in both encodings
    encodings = ["utf-8"] + ["cp1252" if i in legacy else "utf-8" for i in range(len(rows))]
    plain = census_records(write_lines(tmp_path / "utf8" / "2024_pupils.csv", lines, end=end))
    mixed = census_records(write_lines(tmp_path / "mixed" / "2024_pupils.csv", lines,
                                       encodings, end))
    assert list(mixed.forename) == list(rows.forename)
    assert len(legacy) == 100
    assert list(mixed["flags"]) == list(with_flag(plain["flags"], legacy, "encoding_mixed"))
    assert list(plain["flags"]) == [""] * 200


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "cp1252"])
def test_a_file_in_one_encoding_is_read_without_a_flag(tmp_path, encoding):
    rows = pupils()
    records = census_records(write_lines(tmp_path / "2024_pupils.csv", csv_lines(rows),
                                         encoding))
    assert list(records.forename) == list(rows.forename)
    assert "encoding_mixed" not in set(records["flags"])


def test_a_line_in_neither_encoding_is_refused_naming_it(tmp_path):
    lines = csv_lines(pupils(5, ["Zoé"] * 5))
    path = write_lines(tmp_path / "2024_pupils.csv", lines, ["utf-8"] * 3 + ["cp1252"] * 3)
    path.write_bytes(path.read_bytes().replace(b"Smith3", b"Smith\x81"))  # undefined in 1252
    with pytest.raises(SourceError, match=r"neither UTF-8 nor Windows-1252 text \(line 5\)"):
        census_records(path)


def cin_with_ids(ids: list[str], encoding: str) -> str:
    xml = cin_xml(children=len(ids))
    for number, child_id in enumerate(ids, start=1):
        xml = xml.replace(f"<LAchildID>C{number:05d}<", f"<LAchildID>{child_id}<")
    return xml.replace('encoding="utf-8"', f'encoding="{encoding}"')


@pytest.mark.parametrize("encoding,ids", [
    ("ISO-8859-1", ["Zoé1", "Muñoz2", "Siân3"]),
    ("windows-1252", ["O\u2019Brien1", "Brontë2", "José3"]),
    ("utf-8", ["O\u2019Brien1", "Zoé2", "Muñoz3"]),
])
def test_xml_is_decoded_once_in_the_encoding_it_declares(tmp_path, encoding, ids):
    """XML declared ISO-8859-1 was decoded twice (mojibake: Zoé became ZoÃ©)."""
    path = tmp_path / "2024.xml"
    path.write_bytes(cin_with_ids(ids, encoding).encode(encoding))
    assert list(read_source("cin", [path]).records.record_id) == ids


def test_xml_without_a_declaration_may_be_windows_1252(tmp_path):
    path = tmp_path / "2024.xml"
    xml = cin_with_ids(["Zoé1", "O\u2019Brien2"], "utf-8").split("\n", 1)[1]
    path.write_bytes(xml.encode("cp1252"))
    assert list(read_source("cin", [path]).records.record_id) == ["Zoé1", "O\u2019Brien2"]


@pytest.mark.parametrize("declared,written,message", [
    ("utf-8", "cp1252", "declares the encoding utf-8, but line 3 is not utf-8 text"),
    ("ISO-8859-7x", "utf-8", "declares the encoding ISO-8859-7x, which is not one known"),
    ("shift_jis", "shift_jis", "declares the encoding shift_jis, which cannot be read"),
])
def test_xml_not_in_the_encoding_it_declares_is_refused(tmp_path, declared, written, message):
    path = tmp_path / "2024.xml"
    ids = ["Kim1"] if written == "shift_jis" else ["Zoé1"]
    path.write_bytes(cin_with_ids(ids, declared).encode(written))
    result = runner.invoke(app, ["check", "--source", "cin", str(path)])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert f"{path}: {message}" in " ".join(result.output.split())


# ------------------------------------------------------------------ stray quotes


def stray_quote(lines: list[str], line: int, column: int = 1) -> list[str]:
    """``lines`` with a quote opening field ``column`` of line ``line`` (1-based), unclosed."""
    out = list(lines)
    fields = out[line - 1].split(",")
    fields[column] = '"' + fields[column]
    out[line - 1] = ",".join(fields)
    return out


def quoted_surnames(rows: pd.DataFrame) -> list[str]:
    """``rows`` as CSV lines with some surnames properly quoted (quotes later in the file are
    what a stray quote pairs with, swallowing the rows between)."""
    return [re.sub(r",(Smith\d*5),", r',"\1",', line) for line in csv_lines(rows)]


def test_a_stray_quote_costs_one_flagged_row(tmp_path):
    """200 pupils -> 5 records and one flag, once; now 200 records, the one row flagged."""
    rows = pupils()
    lines = quoted_surnames(rows)
    plain = census_records(write_lines(tmp_path / "a" / "2024_pupils.csv", lines))
    damaged = census_records(write_lines(tmp_path / "b" / "2024_pupils.csv",
                                         stray_quote(lines, 52, column=1)))
    assert len(damaged) == len(plain) == 200
    assert list(damaged["flags"]) == list(with_flag(plain["flags"], [50], "quote_unbalanced"))
    assert damaged.row.iloc[50] == 52
    assert damaged.surname.iloc[50] == '"Smith50'  # kept as written, for the provider to see
    others = [i for i in range(200) if i != 50]
    pd.testing.assert_frame_equal(damaged.iloc[others].drop(columns="file"),
                                  plain.iloc[others].drop(columns="file"))


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.integers(2, 61), min_size=1, max_size=4), st.integers(0, 6))
# two stray quotes, the second before a quoted surname, pair up into a record of right width
@example(lines_hit={2, 48, 57}, column=1)
def test_stray_quotes_anywhere_cost_their_rows_only(tmp_path_factory, lines_hit, column):
    rows = pupils(60)
    lines = quoted_surnames(rows)
    for line in lines_hit:
        lines = stray_quote(lines, line, column)
    records = census_records(write_lines(tmp_path_factory.mktemp("q") / "2024_pupils.csv",
                                         lines))
    assert len(records) == 60
    flagged = records.row[records["flags"].str.contains("quote_unbalanced")]
    assert set(flagged) == lines_hit
    assert list(records.row) == list(range(2, 62))


def test_a_stray_quote_running_past_the_csv_field_limit_costs_one_row(tmp_path):
    """A quote that never closes in a big file once ran into the csv module's field limit
    (131,072 characters) and the whole file was refused."""
    rows = pupils(3000)
    records = census_records(write_lines(tmp_path / "2024_pupils.csv",
                                         stray_quote(csv_lines(rows), 10, column=2)))
    assert len(records) == 3000
    assert list(records.row[records["flags"].str.contains("quote_unbalanced")]) == [10]


def test_a_quoted_line_break_is_still_one_field(tmp_path):
    """A properly quoted field may hold a line break (an address): one record, no flag."""
    path = tmp_path / "people.csv"
    path.write_text('id,address,dob\n1,"1 High St\nLeeds",2010-01-01\n2,Low St,2011-02-02\n',
                    encoding="utf-8")
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("record_id: id\nprovider: h1\nfields:\n"
                       "  - {name: street, column: address, kind: text}\n"
                       "  - {name: dob, column: dob, kind: date}\n", encoding="utf-8")
    records = read_source("generic", [path], mapping).records
    assert list(records.street) == ["1 High St\nLeeds", "Low St"]
    assert list(records.row) == [2, 4] and list(records["flags"]) == ["", ""]


def test_a_quote_closed_in_mid_field_is_read_as_ever(tmp_path):
    """Sloppy but closed quotes (``"Smith"son``, a space after the closing quote) are read
    leniently, as before, without a flag: only a quote that never closes is one."""
    lines = csv_lines(pupils(4))
    lines[1] = lines[1].replace(",Smith0,", ',"Smith"0,')
    lines[2] = lines[2].replace(",Smith1,", ',"Smith1" ,')
    records = census_records(write_lines(tmp_path / "2024_pupils.csv", lines))
    assert list(records.surname) == ["Smith0", "Smith1", "Smith2", "Smith3"]
    assert list(records["flags"]) == [""] * 4


def test_a_stray_quote_in_the_header_is_refused(tmp_path):
    lines = stray_quote(csv_lines(pupils(3)), 1, column=2)
    with pytest.raises(SourceError, match="unbalanced quote in its header row"):
        census_records(write_lines(tmp_path / "2024_pupils.csv", lines))


ASG_CHILDREN = ("agency_code,child_id,la_code,dob,gender,ethnicity,disability,"
                "date_entered_care,date_should_be_placed,date_placement_order,date_matched,"
                "date_placed,date_adoption_order,sibling_group,siblings_placed_together,"
                "siblings_placed_separately,date_left_process,reason_left")


def asg_lines(count: int, agency: str = "RAA01") -> list[str]:
    return [ASG_CHILDREN] + [f"{agency},AC{i:05d},836,2018-02-2{i % 9},Female,WBRI,N,"
                             f"2019-08-07,,,,,,N,,,,Adoption order granted"
                             for i in range(count)]


HEADER_903 = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB"


@pytest.mark.parametrize("kind", ["asg-children", "ssda903", "generic"])
def test_every_csv_source_reads_a_stray_quote_as_one_row(tmp_path, kind):
    """All CSV sources go through the one reader: the same behaviour for each."""
    if kind == "asg-children":
        lines, name, args = asg_lines(40), "asg_children.csv", []
    elif kind == "ssda903":
        upns = valid_upns(40)
        lines = [HEADER_903] + [f"{i},1,01/02/2015,WBRI,{upns[i]},," for i in range(40)]
        name, args = "2024/header.csv", []
    else:
        lines = ["id,surname,dob"] + [f"{i},Smith{i},2010-01-0{1 + i % 9}" for i in range(40)]
        name, mapping = "people.csv", tmp_path / "mapping.yaml"
        mapping.write_text("record_id: id\nprovider: h1\nfields:\n"
                           "  - {name: surname, column: surname, kind: name}\n"
                           "  - {name: dob, column: dob, kind: date}\n", encoding="utf-8")
        args = ["--mapping", str(mapping)]
    path = write_lines(tmp_path / "in" / name, stray_quote(lines, 7, column=1))
    result = runner.invoke(app, ["check", "--source", kind, "--period", "2024", "--json", *args,
                                 str(path.parent if kind == "ssda903" else path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["records_in"] == report["records_out"] == 40
    assert report["flags"].get("quote_unbalanced") == 1
    assert report["flag_rows"]["quote_unbalanced"] == [f"{path}:7"]


# ------------------------------------------------------------------ provider codes


def test_an_agency_code_in_another_case_is_one_agency(tmp_path, linkage_key):
    """`--provider raa01` on a file of RAA01 (and the other way round) is one agency: its
    bundles name it alike, and its records' pseudonyms agree."""
    children = write_lines(tmp_path / "c" / "asg_children.csv", asg_lines(5, "RAA01"))
    lower = write_lines(tmp_path / "l" / "asg_children.csv", asg_lines(5, "raa01"))
    manifests = []
    for number, (path, code) in enumerate([(children, "raa01"), (lower, "RAA01"),
                                           (lower, " raa01 ")]):
        out = tmp_path / f"b{number}"
        result = runner.invoke(app, ["hash", "--source", "asg-children", "--provider", code,
                                     "--key", str(linkage_key), "--out", str(out), "--json",
                                     str(path)])
        assert result.exit_code == 0, result.output
        manifests.append(json.loads(result.stdout))
        assert (read_source("asg-children", [path], provider=code).records.provider
                == "RAA01").all()
    assert [m["provider"] for m in manifests] == [["RAA01"]] * 3
    assert len({m["parts"]["linkage"]["sha256"] for m in manifests}) == 1


def test_another_agency_is_still_refused(tmp_path):
    path = write_lines(tmp_path / "asg_children.csv", asg_lines(3, "raa02"))
    with pytest.raises(SourceError, match="holds records of agency RAA02, not provider raa01"):
        read_source("asg-children", [path], provider="raa01")


def test_provider_codes_are_one_spelling_in_every_source(tmp_path):
    cin = tmp_path / "2024.xml"
    cin.write_text(cin_xml(children=3).replace("<LEA>836</LEA>", "<LEA> e836 </LEA>"),
                   encoding="utf-8")
    data = read_source("cin", [cin], provider="E836")
    assert set(data.records.provider) == {"E836"}
    assert {frozenset(t.provider) for t in data.content.values()} == {frozenset({"E836"})}
    census = write_lines(tmp_path / "2024_pupils.csv", csv_lines(pupils(3)))
    assert set(census_records(census).provider) == {"DFE"}
    assert set(read_source("school-census", [census], provider="DfE").records.provider) == {
        "DFE"}


# ------------------------------------------------------------------ school census ids


def test_school_census_files_of_one_year_never_share_an_id(tmp_path):
    """Two files of one year were numbered by line alike (2024:2), and then flagged as
    duplicates, which they are not."""
    rows = pupils(50)
    autumn = write_lines(tmp_path / "2024_pupils_autumn.csv", csv_lines(rows.iloc[:25]))
    spring = write_lines(tmp_path / "2024_pupils_spring.csv", csv_lines(rows.iloc[25:]))
    records = census_records(tmp_path)
    assert len(records) == 50 and records.record_id.is_unique
    assert not records["flags"].str.contains("record_id_duplicate").any()
    assert records.record_id.iloc[0] == "2024:2024_pupils_autumn:2"
    assert records.record_id.iloc[25] == "2024:2024_pupils_spring:2"
    again = read_source("school-census", [spring, autumn]).records
    assert list(again.record_id) == list(records.record_id)  # deterministic
    for column in ["upn", "forename", "surname", "postcode"]:
        assert not any(value in rid for value, rid in zip(rows[column], records.record_id,
                                                          strict=True)), column


def test_school_census_files_of_one_name_in_two_folders_never_share_an_id(tmp_path):
    rows = pupils(20)
    for term, part in [("autumn", rows.iloc[:10]), ("spring", rows.iloc[10:])]:
        write_lines(tmp_path / "census" / term / "2024_pupils.csv", csv_lines(part))
    records = census_records(tmp_path / "census")
    assert records.record_id.is_unique and set(records["flags"]) == {""}
    assert list(records.record_id.iloc[[0, 10]]) == ["2024:autumn/2024_pupils:2",
                                                      "2024:spring/2024_pupils:2"]


# ------------------------------------------------------------------ check and hash report


def test_check_and_hash_report_the_new_flags(tmp_path, linkage_key):
    """Check's JSON and table, and hash's summary, name the flags; check names the rows."""
    lines = stray_quote(quoted_surnames(pupils(forenames=(NAMES * 34)[:200])), 30)
    encodings = ["utf-8"] + ["cp1252" if i % 2 else "utf-8" for i in range(200)]
    path = write_lines(tmp_path / "2024_pupils.csv", lines, encodings)
    report = json.loads(runner.invoke(app, ["check", "--source", "school-census", "--json",
                                            str(path)]).stdout)
    assert report["records_in"] == 200
    assert report["flags"] == {"encoding_mixed": 100, "quote_unbalanced": 1}
    assert report["flag_rows"]["quote_unbalanced"] == [f"{path}:30"]
    assert "Windows-1252" in report["flag_meanings"]["encoding_mixed"]
    table = runner.invoke(app, ["check", "--source", "school-census", str(path)])
    assert table.exit_code == 0
    assert "encoding_mixed" in table.output and "quote_unbalanced" in table.output
    hashed = runner.invoke(app, ["hash", "--source", "school-census", "--provider", "DfE",
                                 "--key", str(linkage_key), "--out", str(tmp_path / "b"),
                                 str(path)])
    assert hashed.exit_code == 0, hashed.output
    said = " ".join(hashed.output.split())
    assert "200 records in, 200 out, 101 flagged" in said
    assert "encoding_mixed 100, quote_unbalanced 1" in said
    assert not any(name in hashed.output + table.output for name in NAMES)
