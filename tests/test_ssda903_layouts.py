"""903 returns as LAs send them: the DfE XML layout, older CSV layouts, folders not named by
year, empty XML, and episode codes checked against their collection year's code set.

The files under tests/data/ssda903_layouts/ hold one synthetic return twice: as the DfE's XML
(``dfe_xml``) and as a folder of CSV tables (``csv``, with an OC2 table the reader ignores).
"""

import copy
import json
import re
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import packaged_path
from linkage.config_models import Sources
from linkage.sources import read_source
from linkage.sources.schema import FLAGS, SourceData

DATA = Path(__file__).parent / "data" / "ssda903_layouts"
DFE_XML = DATA / "dfe_xml" / "2024" / "return.xml"
CSV_RETURN = DATA / "csv" / "2024"
TABLES = ["ad1", "episodes", "header", "missing", "oc2", "placed_adoption", "prev_perm", "reviews",
          "uasc"]
HEADER = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
EPISODE_COLUMNS = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,"
                   "HOME_POST,PL_POST,URN\n")

runner = CliRunner()


def read(path: Path, **options) -> SourceData:
    return read_source("ssda903", [path], provider="893", **options)


def comparable(data: SourceData) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    """Records without where they were read from, and content tables in a fixed row order."""
    records = data.records.drop(columns=["file", "row"]).sort_values("record_id")
    content = {name: table.sort_values(list(table.columns)).reset_index(drop=True)
               for name, table in data.content.items()}
    return records.reset_index(drop=True), content


def assert_same_return(one: SourceData, other: SourceData) -> None:
    records, content = comparable(one)
    other_records, other_content = comparable(other)
    pd.testing.assert_frame_equal(records, other_records)
    assert sorted(content) == sorted(other_content)
    for name in content:
        pd.testing.assert_frame_equal(content[name], other_content[name], obj=name)


def check_json(*args: str) -> dict:
    result = runner.invoke(app, ["check", "--source", "ssda903", "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def squeezed(text: str) -> str:
    """Text without whitespace: Rich wraps long lines wherever it likes."""
    return "".join(text.split())


def refused(*args: str) -> str:
    """The message (squeezed) of a command that must stop with exit 1 and no traceback."""
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output and "internal error" not in result.output
    return squeezed(result.output)


def write_return(folder: Path, header: str, episodes: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "header.csv").write_text(header, encoding="utf-8")
    (folder / "episodes.csv").write_text(episodes, encoding="utf-8")
    return folder


# ------------------------------------------------------------------ the DfE XML layout

def test_dfe_xml_is_read_as_its_csv_tables_are():
    xml, csv = read(DFE_XML), read(CSV_RETURN)
    assert_same_return(xml, csv)
    assert sorted(xml.content) == TABLES
    assert (xml.records["flags"] == "").all()  # every child linkable: none rejected for its id
    assert sorted(xml.records.record_id) == ["1001", "1002", "1003", "1004"]
    assert xml.records.period.eq(2024).all()


def test_dfe_xml_tables_nested_in_header_and_given_inline():
    content = read(DFE_XML).content
    assert content["episodes"].PLACE.tolist() == ["U1", "U4", "A4", "H5", "K2"]  # from <PL>
    assert len(content["reviews"]) == 4 and len(content["missing"]) == 1
    assert content["prev_perm"].PREV_PERM.tolist() == ["Z1", "P1"]
    # AD1 and UASC fields sit in HEADER itself: a row only for the child who has them
    assert content["ad1"].record_id.tolist() == ["1002"]
    assert content["uasc"].record_id.tolist() == ["1003"]
    assert content["placed_adoption"].record_id.tolist() == ["1002"]
    # nested rows carry the header's DOB, as the CSV tables repeat it
    reviews = content["reviews"].set_index("record_id")
    assert str(reviews.loc["1004", "DOB"]) == "2010-11-11"


def one_element_per_table(source: Path) -> str:
    """The CSV return written as 903 XML of the other layout: one element per table row,
    beside HEADER, each column an element."""
    names = {"header": "HEADER", "episodes": "EPISODE", "reviews": "REVIEW", "ad1": "AD1",
             "uasc": "UASC", "missing": "MISSING", "prev_perm": "PREV_PERM",
             "placed_adoption": "PLACED_ADOPTION", "oc2": "OC2"}
    frames = {name: pd.read_csv(source / f"{name}.csv", dtype=str, keep_default_na=False)
              for name in names}
    root = ElementTree.Element("EXPSSDA903")
    for child_id in frames["header"].CHILD:
        child = ElementTree.SubElement(root, "CHILD")
        for name, element in names.items():
            table = frames[name]
            for _, row in table[table["CHILD"].eq(child_id)].iterrows():
                table_row = ElementTree.SubElement(child, element)
                for column, value in row.items():
                    ElementTree.SubElement(table_row, column).text = value
    return ElementTree.tostring(root, encoding="unicode")


def test_the_one_element_per_table_layout_is_still_read(tmp_path):
    path = tmp_path / "2024" / "return.xml"
    path.parent.mkdir()
    path.write_text(one_element_per_table(CSV_RETURN), encoding="utf-8")
    assert_same_return(read(path), read(CSV_RETURN))


def test_dfe_xml_with_lower_case_names_and_a_namespace(tmp_path):
    text = DFE_XML.read_text(encoding="utf-8")
    text = re.sub(r"<(/?)([A-Z_]+)", lambda m: f"<{m.group(1)}{m.group(2).lower()}", text)
    text = text.replace("<expssda903>", '<expssda903 xmlns="urn:example:903">')
    path = tmp_path / "2024" / "return.xml"
    path.parent.mkdir()
    path.write_text(text, encoding="utf-8")
    assert_same_return(read(path), read(DFE_XML))


def test_dfe_xml_with_a_namespace_prefix_is_found_in_a_folder(tmp_path):
    text = re.sub(r"<(/?)([A-Z_0-9]+)([ >/])", r"<\1d:\2\3", DFE_XML.read_text(encoding="utf-8"))
    text = text.replace("<d:EXPSSDA903>", '<d:EXPSSDA903 xmlns:d="urn:example:903">')
    path = tmp_path / "la_893" / "2024" / "return.xml"
    path.parent.mkdir(parents=True)
    path.write_text(text, encoding="utf-8")
    assert "<d:CHILD>" in text
    assert_same_return(read(tmp_path / "la_893" / "2024"), read(DFE_XML))


def test_dfe_xml_found_in_a_folder_and_checked(tmp_path):
    folder = tmp_path / "la_893" / "2024"
    folder.mkdir(parents=True)
    shutil.copy(DFE_XML, folder / "return.xml")
    report = check_json(str(tmp_path / "la_893"))
    assert report["records_in"] == 4 and report["records_rejected"] == 0
    assert report["flags"] == {}


def test_dfe_xml_hashes(tmp_path, linkage_key):
    result = runner.invoke(app, ["hash", "--source", "ssda903", "--provider", "893", "--key",
                                 str(linkage_key), "--out", str(tmp_path / "bundle"),
                                 str(DFE_XML)])
    assert result.exit_code == 0, result.output


# ------------------------------------------------------------------ empty XML

@pytest.mark.parametrize("text", ["", "<EXPSSDA903/>",
                                  '<?xml version="1.0"?>\n<EXPSSDA903>\n</EXPSSDA903>\n'])
def test_an_empty_903_xml_is_a_message(tmp_path, linkage_key, text):
    path = tmp_path / "2024.xml"
    path.write_text(text, encoding="utf-8")
    for command in (["check", "--source", "ssda903", str(path)],
                    ["hash", "--source", "ssda903", "--provider", "893", "--key",
                     str(linkage_key), "--out", str(tmp_path / "bundle"), str(path)]):
        message = refused(*command)
        assert squeezed(str(path)) in message
        assert squeezed("is empty" if not text else "no <CHILD> elements") in message
    assert not (tmp_path / "bundle").exists()


def test_a_child_without_a_header_is_refused_naming_its_row(tmp_path):
    text = DFE_XML.read_text(encoding="utf-8")
    headless = re.sub(r"<HEADER>\s*<CHILDID>1002</CHILDID>.*?</HEADER>", "", text, flags=re.S)
    assert headless.count("<HEADER>") == text.count("<HEADER>") - 1
    path = tmp_path / "2024.xml"
    path.write_text(headless, encoding="utf-8")
    message = refused("check", "--source", "ssda903", str(path))
    assert squeezed(f"{path}: row 2: <CHILD> number 2 has no <HEADER>") in message


# ------------------------------------------------------------------ the collection year

EPISODES_2023_24 = (EPISODE_COLUMNS
                    + "1,05/05/2022,S,C2,N1,U1,PR1,01/11/2023,E11,,LS6 2QT,,\n"
                    + "2,15/02/2024,S,V2,N4,K2,PR3,,,,LS11 5DL,,\n")
HEADERS_1_2 = (HEADER + "1,1,14/03/2012,WBRI,V893100112001,,\n"
               + "2,2,02/07/2016,MWBC,V893100113002,,\n")


def test_the_year_of_a_folder_not_named_by_year_comes_from_its_episodes(tmp_path):
    folder = write_return(tmp_path / "return_a", HEADERS_1_2, EPISODES_2023_24)
    data = read(folder)
    assert data.records.period.eq(2024).all()
    assert data.content["episodes"].period.eq(2024).all()
    # a date on 1 April starts the next collection year
    open_episodes = EPISODES_2023_24.replace("01/11/2023,E11", ",")
    write_return(tmp_path / "return_b", HEADERS_1_2, open_episodes)
    assert read(tmp_path / "return_b").records.period.eq(2024).all()
    write_return(tmp_path / "return_c", HEADERS_1_2, open_episodes.replace("15/02/", "01/04/"))
    assert read(tmp_path / "return_c").records.period.eq(2025).all()


def test_the_year_of_an_xml_return_not_named_by_year_comes_from_its_episodes(tmp_path):
    path = tmp_path / "la_893" / "return.xml"
    path.parent.mkdir()
    shutil.copy(DFE_XML, path)
    report = check_json(str(tmp_path / "la_893"))
    assert report["records_by_period"] == {"2024": 4}


def test_a_folder_whose_episodes_ceased_in_several_years_is_refused(tmp_path):
    folder = write_return(tmp_path / "extract", HEADERS_1_2,
                          EPISODES_2023_24 + "2,01/06/2019,S,C2,N1,U1,PR1,03/03/2020,E11,,,,\n")
    message = refused("check", "--source", "ssda903", str(folder))
    assert squeezed(f"{folder}: cannot tell the collection year") in message
    assert squeezed("ceased in several collection years (2020 to 2024") in message
    assert squeezed("1 episode(s) ceased before 1 April 2023") in message
    assert "--period" in message
    # the operator's way out: one year named
    assert check_json("--period", "2024", str(folder))["records_in"] == 2


def test_a_folder_without_year_or_episode_dates_is_refused(tmp_path):
    folder = write_return(tmp_path / "return_a", HEADERS_1_2, EPISODE_COLUMNS)
    message = refused("check", "--source", "ssda903", str(folder))
    assert squeezed("cannot tell the collection year: it has no episode dates") in message


# ------------------------------------------------------------------ codes by collection year

def episodes_with(place: str, rec: str = "X1", rne: str = "S", ls: str = "C2") -> str:
    return (EPISODE_COLUMNS + "1,05/05/2020,S,C2,N1,U1,PR1,01/11/2020,X1,,,,\n"
            + f"2,05/05/2020,{rne},{ls},N1,{place},PR1,01/11/2020,{rec},,,,\n")


def code_report(tmp_path: Path, year: int, **codes: str) -> dict:
    folder = write_return(tmp_path / str(year), HEADERS_1_2, episodes_with(**codes))
    return check_json("--period", str(year), str(folder))


def test_an_unknown_code_is_flagged_naming_field_and_row(tmp_path):
    report = code_report(tmp_path, 2024, place="ZZ", rec="E99", rne="Q", ls="c2")
    assert report["flags"] == {"code_unknown": 1}  # one child; not rejected
    assert report["records_rejected"] == 0
    episodes = tmp_path / "2024" / "episodes.csv"
    # by field, in the order configs/sources.yaml lists them (LS: lower case is no problem)
    assert report["flag_rows"]["code_unknown"] == [f"{episodes}:3 RNE", f"{episodes}:3 REC",
                                                   f"{episodes}:3 PLACE"]
    assert "ZZ" not in json.dumps(report)  # the field is named, never its value
    assert "field and row" in FLAGS["code_unknown"].meaning


@pytest.mark.parametrize(("place", "year", "known"), [
    ("U1", 2020, True), ("u6", 2026, True),   # foster placements, any case
    ("K3", 2024, False), ("K3", 2025, True),  # added 2024-25
    ("H5", 2025, True), ("H5", 2026, False),  # retired after 2024-25
    ("P2", 2026, False), ("Z1", 2026, False),
    ("Z11", 2025, False), ("Z14", 2026, True),  # added 2025-26
])
def test_placement_codes_follow_their_collection_year(tmp_path, place, year, known):
    flags = code_report(tmp_path, year, place=place)["flags"]
    assert flags == ({} if known else {"code_unknown": 1})


def test_reason_ceased_codes(tmp_path):
    assert code_report(tmp_path / "a", 2024, place="U1", rec="E4A")["flags"] == {}
    assert code_report(tmp_path / "b", 2024, place="U1", rec="E4")["flags"] == {
        "code_unknown": 1}


def test_the_dfe_xml_codes_are_checked_too(tmp_path):
    text = DFE_XML.read_text(encoding="utf-8").replace("<PL>K2</PL>", "<PL>K9</PL>")
    path = tmp_path / "2024.xml"
    path.write_text(text, encoding="utf-8")
    report = check_json(str(path))
    assert report["flags"] == {"code_unknown": 1}
    assert report["flag_rows"]["code_unknown"] == [f"{path}:4 PLACE"]  # the fourth child


def sources_with(change) -> dict:
    config = copy.deepcopy(yaml.safe_load(packaged_path("sources.yaml").read_text()))
    change(config["ssda903"])
    return config


@pytest.mark.parametrize(("change", "problem"), [
    (lambda c: c["codes"].update(PLACEMENT=[{"codes": ["U1"]}]), "not a column of any table"),
    (lambda c: c["codes"]["PLACE"].append({"codes": ["U1"], "from": 2026, "to": 2025}),
     "must not be after to"),
    (lambda c: c["codes"]["PLACE"].append({"codes": ["u1"]}), "must be upper case"),
    (lambda c: c["tables"].pop("episodes"), "must include 'episodes'"),
    (lambda c: c["tables"]["reviews"]["xml"].append("EPISODE"), "already names table"),
    (lambda c: c["tables"]["episodes"]["optional"].append("CHILD"), "may not be optional"),
])
def test_the_903_configuration_is_checked(change, problem):
    Sources.model_validate(sources_with(lambda c: None))  # the packaged file is valid
    with pytest.raises(ValidationError, match=problem):
        Sources.model_validate(sources_with(change))


# ------------------------------------------------------------------ older layouts

OLDER_EPISODES = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,HOME_POST,PL_POST\n"
                  "1,05/05/2012,S,C2,N1,U1,PR1,01/11/2012,X1,LS6 2QT,\n"
                  "1,01/11/2012,P,C2,N1,U4,PR1,,,LS6 2QT,\n")


def test_an_older_episodes_table_is_read_with_its_absent_columns_flagged(tmp_path):
    folder = write_return(tmp_path / "2013", HEADERS_1_2.replace("/2016", "/2006"),
                          OLDER_EPISODES)
    report = check_json(str(folder))
    assert report["records_in"] == 2 and report["records_rejected"] == 0
    assert report["flags"] == {"column_absent": 1}  # child 1 has episodes; child 2 none
    assert report["flag_rows"]["column_absent"] == [
        f"{folder / 'episodes.csv'} lacks REASON_PLACE_CHANGE, URN"]
    episodes = read(folder).content["episodes"]
    assert (episodes.URN == "").all() and (episodes.REASON_PLACE_CHANGE == "").all()
    assert read(folder).records.postcode.tolist() == ["LS6 2QT", ""]


def test_an_episodes_table_with_only_the_columns_it_needs_is_read(tmp_path):
    episodes = "CHILD,DECOM,RNE,LS,PLACE,DEC,REC\n1,05/05/2012,S,C2,U1,01/11/2012,X1\n"
    folder = write_return(tmp_path / "2013", HEADERS_1_2.replace("/2016", "/2006"), episodes)
    report = check_json(str(folder))
    assert report["files_ignored"] == 0
    assert report["flags"] == {"column_absent": 1}
    assert report["flag_rows"]["column_absent"] == [
        f"{folder / 'episodes.csv'} lacks CIN, PLACE_PROVIDER, REASON_PLACE_CHANGE, HOME_POST, "
        "PL_POST, URN"]


def test_a_table_lacking_a_column_it_cannot_do_without_is_refused(tmp_path):
    episodes = OLDER_EPISODES.replace("DECOM,", "START,")
    folder = write_return(tmp_path / "2013", HEADERS_1_2, episodes)
    message = refused("check", "--source", "ssda903", str(folder))
    assert squeezed(f"{folder / 'episodes.csv'}: looks like the 903 episodes table but lacks "
                    "the column(s) DECOM") in message
