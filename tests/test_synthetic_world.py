"""Properties of the synthetic England: formats parse, truth covers every record, errors known."""

import csv
import itertools
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime

import pandas as pd

from synthetic.reference import LA_CODES, UPN_CHECK_ALPHABET

UPN_SHAPE = re.compile(r"^[A-HJ-NP-RT-Z]\d{11}[0-9A-HJ-NP-RT-Z]$")
NS_903_TABLES = {"header.csv", "episodes.csv", "ad1.csv", "placed_adoption.csv", "reviews.csv",
                 "missing.csv", "prev_perm.csv", "uasc.csv", "oc2.csv", "oc3.csv"}


def upn_check_letter(upn: str) -> str:
    """Independent of the generator: the DOMAIN.md section 6 rule, one UPN at a time."""
    total = 0
    for position, char in enumerate(upn[1:], start=2):
        value = int(char) if char.isdigit() else UPN_CHECK_ALPHABET.index(char)
        total += value * position
    return UPN_CHECK_ALPHABET[total % 23]


def read_csv(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def csv_files(world_dir):
    return sorted(world_dir.glob("providers/**/*.csv"))


def cin_children(path):
    return ET.parse(path).getroot().find("Children").findall("Child")


def test_every_kind_of_source_file_is_written(world_dir):
    providers = world_dir / "providers"
    assert list(providers.glob("la_*/ssda903/*/header.csv"))
    assert list(providers.glob("la_*/ssda903/*/episodes.csv"))
    assert list(providers.glob("la_*/cin/*.xml"))
    assert list(providers.glob("dfe/school_census/*_pupils.csv"))
    assert list(providers.glob("*/asg/asg_children.csv"))
    assert list(providers.glob("*/asg/asg_adopters.csv"))
    assert list(providers.glob("dfe/generic/attainment/*.csv"))
    assert (providers / "dfe/generic/attainment/mapping.yaml").is_file()
    summary = json.loads((world_dir / "world.json").read_text())
    assert set(summary["records"]) == {"ssda903", "cin", "school_census", "asg_children",
                                       "asg_adopters", "generic"}


def test_every_file_parses_with_a_standard_parser(world_dir):
    for path in csv_files(world_dir):
        rows = read_csv(path)
        with open(path, newline="", encoding="utf-8") as handle:
            header = next(csv.reader(handle))
        assert all(len(row) == len(header) and None not in row for row in rows), path
        assert not any(value in {"nan", "NaN", "<NA>", "None", "NaT"}
                       for row in rows for value in row.values()), path
    for path in sorted(world_dir.glob("providers/la_*/cin/*.xml")):
        root = ET.parse(path).getroot()
        assert root.tag == "Message" and root.find("Header/CollectionDetails/Year") is not None


def test_every_source_record_has_exactly_one_truth_row(world_dir, truth_records):
    counted = truth_records.groupby("file").size().to_dict()
    files = {}
    for path in world_dir.glob("providers/la_*/ssda903/*/header.csv"):
        files[str(path.relative_to(world_dir))] = len(read_csv(path))
    for path in world_dir.glob("providers/la_*/cin/*.xml"):
        files[str(path.relative_to(world_dir))] = len(cin_children(path))
    for pattern in ("providers/dfe/school_census/*.csv", "providers/*/asg/*.csv",
                    "providers/*/generic/*/*.csv"):
        for path in world_dir.glob(pattern):
            files[str(path.relative_to(world_dir))] = len(read_csv(path))
    assert {f: n for f, n in files.items() if n} == counted
    assert not truth_records.duplicated(["file", "row"]).any()


def test_truth_names_the_record_in_each_row(world_dir, truth_records):
    """Row numbers in the truth point at the record whose id the truth names."""
    for source in ("ssda903", "school_census", "asg_children", "asg_adopters", "generic"):
        sample = truth_records[truth_records.source == source].groupby("file").head(3)
        for file, rows in sample.groupby("file"):
            data = read_csv(world_dir / file)
            id_column = {"ssda903": "CHILD", "asg_children": "child_id",
                         "asg_adopters": "adopter_id", "generic": "result_id"}.get(source)
            for row in rows.itertuples():
                if id_column:
                    assert data[row.row - 2][id_column] == row.record_id
    cin = truth_records[truth_records.source == "cin"].groupby("file").head(3)
    for file, rows in cin.groupby("file"):
        children = cin_children(world_dir / file)
        for row in rows.itertuples():
            found = children[row.row - 1].find("ChildIdentifiers/LAchildID").text
            assert found == row.record_id


def test_every_upn_is_valid_or_a_flagged_error(world_dir, truth_records):
    flagged = truth_records.set_index(["file", "row"]).upn_error.to_dict()
    la_codes = {f"{code:03d}" for code in LA_CODES}
    checked = 0
    for path in csv_files(world_dir):
        relative = str(path.relative_to(world_dir))
        for number, row in enumerate(read_csv(path), start=2):
            upn = row.get("UPN") or row.get("upn") or ""
            if not upn or upn.startswith("UN"):
                continue
            assert UPN_SHAPE.match(upn), (relative, number)
            assert upn[1:4] in la_codes
            error = flagged[(relative, number)]
            valid = upn_check_letter(upn) == upn[0]
            assert valid == (error != "check_letter"), (relative, number, error)
            assert upn[-1].isdigit() == (error != "temporary"), (relative, number)
            checked += 1
    assert checked > 1000


def test_un_codes_stand_in_for_missing_upns(truth_records):
    with_code = truth_records[truth_records.un_code != ""]
    assert set(with_code.un_code) <= {"UN1", "UN2", "UN3", "UN4", "UN5"}
    assert {"UN1", "UN4"} <= set(with_code.un_code)
    assert (with_code.upn_error.isin(["", "missing"])).all()


def test_twins_exist_and_share_a_date_of_birth(truth_persons):
    twins = truth_persons[truth_persons.multiple_birth]
    assert twins.maternity_id.nunique() >= 20
    assert (twins.groupby("maternity_id").dob.nunique() == 1).all()
    share = twins.maternity_id.nunique() / truth_persons.maternity_id.nunique()
    assert 0.005 < share < 0.03


def test_sibling_groups_appear_in_asg(world_dir):
    rows = pd.concat([pd.read_csv(p, dtype=str) for p in
                      world_dir.glob("providers/*/asg/asg_children.csv")])
    in_groups = rows[rows.sibling_group == "Y"]
    assert len(in_groups) >= 4
    groups = pd.read_parquet(world_dir / "truth" / "sibling_groups.parquet")
    assert (groups.groupby("sibling_group_id").size() >= 2).all()


def test_children_moving_la_get_new_child_ids(truth_records, world_dir):
    periods = pd.read_parquet(world_dir / "truth" / "cla_periods.parquet")
    moved = periods[periods.transferred_in].person_id.unique()
    assert len(moved) >= 5
    header = truth_records[(truth_records.source == "ssda903")
                           & truth_records.person_id.isin(moved)]
    ids = header.groupby("person_id")[["provider", "record_id"]].nunique()
    assert (ids.provider >= 2).all() and (ids.record_id >= 2).all()
    # within one LA a child keeps the same CHILD id across years
    per_la = header.groupby(["person_id", "provider"]).record_id.nunique()
    assert (per_la == 1).all()


def test_ssda903_dobs_agree_across_tables(world_dir):
    for folder in sorted(world_dir.glob("providers/la_*/ssda903/*"))[:12]:
        names = {p.name for p in folder.iterdir()}
        assert names <= NS_903_TABLES
        header = {r["CHILD"]: r["DOB"] for r in read_csv(folder / "header.csv")}
        for name in names - {"header.csv", "episodes.csv"}:
            for row in read_csv(folder / name):
                assert header[row["CHILD"]] == row["DOB"], (folder, name)


def test_sex_codes_follow_each_collection_and_year(world_dir):
    for folder in world_dir.glob("providers/la_*/ssda903/*"):
        codes = {r["SEX"] for r in read_csv(folder / "header.csv")}
        assert codes <= ({"1", "2"} if int(folder.name) <= 2024 else {"M", "F", "U"})
    for path in world_dir.glob("providers/la_*/cin/*.xml"):
        root = ET.parse(path).getroot()
        year = int(path.stem)
        element = "GenderCurrent" if year <= 2024 else "Sex"
        values = {e.text for e in root.iter(element)}
        assert values and values <= ({"0", "1", "2", "9"} if year <= 2024 else {"M", "F", "U"})
    for path in world_dir.glob("providers/dfe/school_census/*.csv"):
        header = read_csv(path)[0].keys()
        assert ("gender" in header) != ("sex" in header)


def test_dates_parse_in_each_collection_style(world_dir):
    for row in read_csv(next(world_dir.glob("providers/la_*/ssda903/*/header.csv"))):
        datetime.strptime(row["DOB"], "%d/%m/%Y")
    styles = {"%Y-%m-%d", "%Y-%b-%d %H:%M:%S"}
    seen = set()
    for path in world_dir.glob("providers/dfe/school_census/*.csv"):
        value = read_csv(path)[0]["dob"]
        for style in styles:
            try:
                datetime.strptime(value, style)
                seen.add(style)
            except ValueError:
                pass
    assert seen == styles


def test_recorded_dobs_agree_with_truth_unless_an_error_was_injected(world_dir, truth_records,
                                                                    truth_persons):
    dob = truth_persons.set_index("person_id").dob
    school = truth_records[truth_records.source == "school_census"]
    for file, rows in school.groupby("file"):
        data = pd.read_csv(world_dir / file, dtype=str, keep_default_na=False)
        recorded = pd.to_datetime(data.dob.str.slice(0, 11), format="mixed").dt.date
        true = pd.to_datetime(rows.person_id.map(dob)).dt.date.to_numpy()
        same = recorded.to_numpy()[rows.row.to_numpy() - 2] == true
        assert (same == (rows.dob_error.to_numpy() == "")).all(), file


def test_unborn_children_appear_in_cin_without_a_birth_date(world_dir, truth_records):
    unborn = truth_records[truth_records.unborn]
    assert len(unborn) >= 1
    for row in unborn.itertuples():
        child = cin_children(world_dir / row.file)[row.row - 1]
        assert child.find("ChildIdentifiers/ExpectedPersonBirthDate") is not None
        assert child.find("ChildIdentifiers/PersonBirthDate") is None


def test_injected_errors_are_counted_in_world_json(world_dir, truth_records):
    summary = json.loads((world_dir / "world.json").read_text())
    school = summary["injected_errors"]["school_census"]
    rows = truth_records[truth_records.source == "school_census"]
    assert school["dob_swap"] == (rows.dob_error == "swap").sum() > 0
    assert school["upn_temporary"] == (rows.upn_error == "temporary").sum() > 0
    cin = truth_records[truth_records.source == "cin"]
    assert summary["injected_errors"]["cin"]["duplicate"] == cin.duplicate.sum() > 0


def test_error_rates_are_higher_for_groups_recorded_worse(truth_records, truth_persons):
    """Linkage bias can only be measured if the world holds it: some groups' records are worse."""
    school = truth_records[truth_records.source == "school_census"]
    persons = truth_persons.set_index("person_id")
    bad = (school.dob_error != "") | (school.upn_error.isin(["check_letter", "temporary"]))
    moved = school.person_id.map(persons.moved_la).to_numpy()
    assert bad[moved].mean() > 1.2 * bad[~moved].mean()
    traveller = school.person_id.map(persons.ethnicity).isin(["WIRT", "WROM"]).to_numpy()
    white_british = school.person_id.map(persons.ethnicity).eq("WBRI").to_numpy()
    assert bad[traveller].mean() > bad[white_british].mean()


def test_episodes_chain_without_gaps_or_overlaps(world_dir):
    for path in sorted(world_dir.glob("providers/la_*/ssda903/*/episodes.csv")):
        episodes = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert (episodes.PLACE != "").all() and (episodes.LS != "").all(), path
        decom = pd.to_datetime(episodes.DECOM, format="%d/%m/%Y")
        dec = pd.to_datetime(episodes.DEC.replace("", None), format="%d/%m/%Y")
        assert (dec.isna() | (dec > decom)).all(), path
        for _, child in episodes.assign(decom=decom, dec=dec).groupby("CHILD"):
            child = child.sort_values("decom")
            follows = child.REC.iloc[:-1] == "X1"
            # an episode ending X1 is followed by one starting that same day
            assert (child.dec.iloc[:-1][follows].to_numpy()
                    == child.decom.iloc[1:][follows.to_numpy()].to_numpy()).all(), path


def test_adoption_dates_run_in_order(world_dir):
    rows = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in
                      world_dir.glob("providers/*/asg/asg_children.csv")])
    steps = ["date_entered_care", "date_should_be_placed", "date_placement_order",
             "date_matched", "date_placed", "date_adoption_order"]
    dates = rows[steps].replace("", None).apply(pd.to_datetime)
    for earlier, later in itertools.pairwise(steps):
        both = dates[earlier].notna() & dates[later].notna()
        assert (dates[earlier][both] <= dates[later][both]).all(), (earlier, later)
    assert dates.date_adoption_order.notna().sum() >= 5
