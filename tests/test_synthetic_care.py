"""Care events of the synthetic England: protection plans, re-entries, UASC, OC2/OC3, and the
truth cohorts counted from the truth files alone."""

import xml.etree.ElementTree as ET
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.sources.ssda903 import read_ssda903
from synthetic.truth_cohorts import CohortRefused, truth_cohort
from synthetic.world import build_world, load_config, write_world

SHORT_BREAKS = frozenset({"V3", "V4"})


@pytest.fixture(scope="module")
def busy_world(tmp_path_factory) -> Path:
    """A small world where the rare care events are common, so each shows up many times."""
    config = load_config()
    config["reentry"]["rate"] = 0.9
    config["uasc"]["arrivals_per_100000"] = 80
    config["protection_plans"].update(second_plan_share=0.5, repeat_referral_share=0.6,
                                      left_open_share=0.3)
    out = tmp_path_factory.mktemp("busy")
    write_world(build_world(2000, 5, config), out)
    return out


def truth(world: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(world / "truth" / f"{name}.parquet")


def cin_plans(world: Path) -> pd.DataFrame:
    """Every plan as the CIN XML writes it, with its episode's dates (one row per plan)."""
    rows = []
    for path in sorted(world.glob("providers/la_*/cin/*.xml")):
        for details in ET.parse(path).getroot().iter("CINdetails"):
            plans = details.findall("ChildProtectionPlans")
            for plan in plans:
                rows.append({"file": path.name, "referral": details.findtext("CINreferralDate"),
                             "closure": details.findtext("CINclosureDate"),
                             "start": plan.findtext("CPPstartDate"),
                             "end": plan.findtext("CPPendDate"), "plans": len(plans)})
    frame = pd.DataFrame(rows)
    for column in ("referral", "closure", "start", "end"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def test_every_plan_sits_inside_its_episode_but_the_configured_slips(busy_world):
    plans = cin_plans(busy_world)
    assert (plans.plans > 1).any()  # an episode holding several plans, one after another
    assert (plans.start >= plans.referral).all()
    closed = plans.closure.notna()
    ended = closed & plans.end.notna()
    assert (plans.end[ended] <= plans.closure[ended]).all()
    assert (plans.end.isna() | (plans.start < plans.end)).all()
    # an episode closed with its plan left open: the recording slip the config asks for
    slips = truth(busy_world, "cpp_plans").merge(
        truth(busy_world, "cin_episodes"), on=["person_id", "la_code", "referral_date"])
    left_open = slips.closure_date.notna() & slips.end_date.isna()
    assert 0.15 < left_open.sum() / slips.closure_date.notna().sum() < 0.45
    assert (closed & plans.end.isna()).any()


def test_repeat_plans_count_the_earlier_ones(busy_world):
    plans = truth(busy_world, "cpp_plans")
    per_child = plans.groupby(["person_id", "la_code"])
    assert (per_child.referral_date.nunique() > 1).any()  # a new episode with a new plan
    numbers = []
    for path in sorted(busy_world.glob("providers/la_*/cin/*.xml")):
        numbers += [int(n.text) for n in ET.parse(path).getroot().iter("NumberOfPreviousCPP")]
    assert max(numbers) >= 1 and min(numbers) == 0


def test_children_come_back_into_care(busy_world):
    episodes = truth(busy_world, "cla_episodes")
    starts = episodes[episodes.rne == "S"].groupby("person_id").decom.nunique()
    periods = truth(busy_world, "cla_periods")
    again = periods[periods.case_id <= -2_000_000]
    assert len(again) >= 5 and (starts > 1).sum() >= len(again.person_id.unique())
    earlier = periods[~periods.index.isin(again.index)].groupby("person_id").end.max()
    gap = pd.to_datetime(again.start) - pd.to_datetime(again.person_id.map(earlier))
    assert (gap.dt.days >= load_config()["reentry"]["gap_days"]["min"]).all()


def test_uasc_rows_only_for_uasc_children(busy_world):
    uasc = truth(busy_world, "uasc")
    persons = truth(busy_world, "persons").set_index("person_id")
    assert len(uasc) >= 10 and persons.uasc.loc[uasc.person_id].all()
    records = truth(busy_world, "records")
    ids = records[records.source == "ssda903"].assign(
        folder=lambda r: r.file.str.rsplit("/", n=1).str[0])
    listed = 0
    for path in sorted(busy_world.glob("providers/la_*/ssda903/*/uasc.csv")):
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
        folder = str(path.parent.relative_to(busy_world))
        who = ids[ids.folder == folder].set_index("record_id").person_id
        assert persons.uasc.loc[who.loc[table.CHILD]].all(), path
        listed += len(table)
    assert listed >= len(uasc)
    # they came from abroad: no school census record, no UPN in any return
    assert not records[(records.source == "school_census")
                       & records.person_id.isin(uasc.person_id)].any().any()
    un = records[(records.source == "ssda903") & records.person_id.isin(uasc.person_id)]
    assert set(un.un_code) == {"UN2", "UN3"}
    arrived = truth(busy_world, "cla_periods").groupby("person_id").start.min()
    need = truth(busy_world, "cin_episodes").merge(uasc[["person_id"]].drop_duplicates())
    assert (pd.to_datetime(need.referral_date)
            >= pd.to_datetime(need.person_id.map(arrived))).all()  # nothing before arrival
    # mostly boys of 14 to 17 on arrival, accommodated under s20 (V2)
    arrivals = persons.loc[uasc.person_id.unique()]
    assert (arrivals.sex == "M").mean() > 0.7
    ls = truth(busy_world, "cla_episodes").merge(uasc[["person_id"]].drop_duplicates()).ls
    assert (ls == "V2").mean() > 0.6


def test_oc2_only_for_children_looked_after_twelve_months(busy_world):
    periods = truth(busy_world, "cla_periods")
    oc2 = truth(busy_world, "outcomes_oc2")
    assert len(oc2) >= 20
    expected = []
    for year in sorted(oc2.period.unique()):
        y0, y1 = pd.Timestamp(date(year - 1, 4, 1)), pd.Timestamp(date(year, 3, 31))
        start, end = pd.to_datetime(periods.start), pd.to_datetime(periods.end)
        stayed = periods[(start <= y0) & (end.isna() | (end > y1))]
        expected += [(p, f"{la:03d}", year) for p, la in zip(stayed.person_id, stayed.la_code,
                                                               strict=True)]
    assert set(zip(oc2.person_id, oc2.la_code, oc2.period, strict=True)) == set(expected)
    scored = oc2.SDQ_SCORE != ""
    assert oc2.SDQ_SCORE[scored].astype(int).between(0, 40).all()
    assert (scored != (oc2.SDQ_REASON != "")).all()  # a score or a reason, never both
    oc3 = truth(busy_world, "outcomes_oc3")
    assert len(oc3) and ((oc3.ACCOM == "") | oc3.ACCOM.str.match(r"^[A-Z][12]$")).all()


def test_the_903_readers_and_check_read_oc2_oc3_and_uasc(busy_world, tmp_path):
    folder = next(p.parent for p in sorted(busy_world.glob(
        "providers/la_*/ssda903/*/oc3.csv")) if (p.parent / "oc2.csv").exists()
        and (p.parent / "uasc.csv").exists())
    data = read_ssda903([folder])
    assert {"oc2", "oc3", "uasc"} <= set(data.content) and not data.ignored
    assert len(data.content["oc2"]) == len(pd.read_csv(folder / "oc2.csv"))
    result = CliRunner().invoke(app, ["check", "--source", "ssda903", str(folder)])
    written = len(list(folder.glob("*.csv")))
    assert result.exit_code == 0 and f"{written} file(s)" in result.output
    # the DfE's XML layout: OC2 nested in HEADER, OC3 fields given in HEADER itself
    xml = tmp_path / "2025.xml"
    xml.write_text(
        "<EXPSSDA903><CHILD><HEADER><CHILDID>A1</CHILDID><SEX>M</SEX><DOB>01/05/2007</DOB>"
        "<ETHNIC>WBRI</ETHNIC><UPN>UN2</UPN><IN_TOUCH>YES</IN_TOUCH><ACTIV>F2</ACTIV>"
        "<ACCOM>U1</ACCOM><OC2><SDQ_SCORE>12</SDQ_SCORE><CONVICTED>0</CONVICTED></OC2>"
        "</HEADER><EPISODE><DECOM>01/06/2024</DECOM><RNE>S</RNE><LS>V2</LS><PL>U4</PL>"
        "</EPISODE></CHILD></EXPSSDA903>", encoding="utf-8")
    content = read_ssda903([xml], provider="201").content
    assert content["oc3"].ACCOM.tolist() == ["U1"]
    assert content["oc2"].SDQ_SCORE.tolist() == ["12"]


# ------------------------------------------------------------------ truth cohorts by hand

def _d(text):
    return pd.Timestamp(text).date() if text else None


def _frame(columns: list[str], rows: list[tuple], dates: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=columns)
    for column in dates:
        frame[column] = frame[column].map(_d)
    return frame


@pytest.fixture(scope="module")
def tiny_truth(tmp_path_factory) -> Path:
    """A hand-made truth folder for 2020 to 2025 (see the expected counts below)."""
    folder = tmp_path_factory.mktemp("tiny")
    pd.DataFrame({"year": range(2020, 2026)}).to_parquet(folder / "collection_years.parquet")
    _frame(["person_id", "la_code", "decom", "dec", "ls"], [
        (1, "201", "2023-01-01", "2024-02-01", "C1"), (1, "201", "2024-02-01", "", "C2"),
        (2, "201", "2024-10-01", "", "V2"),
        (3, "201", "2024-05-01", "2024-05-03", "V3"), (3, "201", "2024-06-01", "", "V4"),
        (4, "201", "2023-06-01", "2024-06-01", "C2"), (4, "202", "2024-06-01", "", "C2"),
        (5, "201", "2021-01-01", "2022-01-01", "C2"),
        (6, "201", "2018-01-01", "2019-02-01", "C2"),      # before the world's years
        (7, "201", "2023-05-01", "2024-04-01", "C2"),      # ends on the year's first day
        (8, "201", "2023-01-01", "2024-06-01", "C2"), (8, "201", "2024-06-02", "", "C2"),
        (9, "201", "2023-01-01", "2024-06-01", "C2"), (9, "201", "2024-06-03", "", "C2"),
        (10, "201", "2022-01-01", "", "V2"),
        (11, "201", "2024-04-15", "", "V2"),
        (26, "201", "2024-01-01", "", "C2"),
    ], ["decom", "dec"]).to_parquet(folder / "cla_episodes.parquet")
    _frame(["person_id", "la_code", "duc"], [
        (2, "201", ""), (10, "201", "2024-03-01"), (11, "201", "2024-05-01"),
        (4, "201", ""), (4, "202", ""),
    ], ["duc"]).to_parquet(folder / "uasc.parquet")
    _frame(["person_id", "la_code", "referral_date", "closure_date"], [
        (20, "201", "2024-05-01", ""), (21, "201", "2023-01-01", "2024-01-10"),
        (22, "201", "2024-01-01", "2024-09-01"), (1, "201", "2022-12-01", ""),
        (23, "201", "2024-01-01", ""), (23, "202", "2024-06-01", ""),
        (2, "201", "2024-09-01", ""), (24, "201", "2019-01-01", "2019-03-01"),
        (25, "201", "2021-01-01", "2021-12-01"), (25, "201", "2023-03-01", "2023-12-01"),
        (26, "202", "2024-02-01", ""),
    ], ["referral_date", "closure_date"]).to_parquet(folder / "cin_episodes.parquet")
    _frame(["person_id", "la_code", "referral_date", "start_date", "end_date"], [
        (20, "201", "2024-05-01", "2024-05-20", "2024-08-01"),   # two plans in one episode
        (20, "201", "2024-05-01", "2024-10-01", ""),
        (21, "201", "2023-01-01", "2023-02-01", ""),   # left open; its episode closed
        (22, "201", "2024-01-01", "2024-02-01", ""),   # left open; closed within the year
        (1, "201", "2022-12-01", "2023-01-01", ""),
        (24, "201", "2019-01-01", "2019-01-10", "2019-02-20"),
        (25, "201", "2021-01-01", "2021-02-01", "2021-11-01"),   # a repeat plan later
        (25, "201", "2023-03-01", "2023-04-01", "2023-11-01"),
        (26, "202", "2024-02-01", "2024-03-01", ""),   # on a plan here, looked after in 201
    ], ["referral_date", "start_date", "end_date"]).to_parquet(folder / "cpp_plans.parquet")
    return folder


# cohort: (persons, naive sum of the LAs' own counts) for 2025, counted by hand
EXPECTED = {
    "cla_31mar": ({1, 2, 4, 8, 9, 10, 11, 26}, 8),
    "cla_12m_31mar": ({1, 4, 8, 10, 26}, 4),          # 4's spell in LA 202 began 2024-06-01
    "cla_under_12m_31mar": ({2, 9, 11}, 4),
    "cla_any_point": ({1, 2, 4, 7, 8, 9, 10, 11, 26}, 10),
    "ever_cla_6y": ({1, 2, 4, 5, 7, 8, 9, 10, 11, 26}, 11),
    "uasc_any_point": ({2, 4, 11}, 4),
    "cin_31mar": ({1, 2, 20, 23, 26}, 6),
    "cin_any_point": ({1, 2, 20, 22, 23, 26}, 7),
    "ever_cin_6y": ({1, 2, 20, 21, 22, 23, 25, 26}, 9),
    "cpp_any_point": ({1, 20, 22, 26}, 4),
    "ever_cpp_6y": ({1, 20, 21, 22, 25, 26}, 6),
    "cppo_31mar": ({20}, 2),                          # LA 202 does not know 26 is looked after
    "cino_31mar": ({23}, 2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_truth_cohort_on_a_hand_made_truth(tiny_truth, name):
    assert truth_cohort(tiny_truth, name, 2025, SHORT_BREAKS) == EXPECTED[name]


def test_truth_cohort_refuses_what_the_world_cannot_answer(tiny_truth):
    with pytest.raises(CohortRefused, match="2019"):
        truth_cohort(tiny_truth, "ever_cla_6y", 2024, SHORT_BREAKS)
    with pytest.raises(CohortRefused, match="unknown cohort"):
        truth_cohort(tiny_truth, "cla_sometimes", 2025, SHORT_BREAKS)
    with pytest.raises(CohortRefused, match="2026"):
        truth_cohort(tiny_truth, "cla_31mar", 2026, SHORT_BREAKS)


def test_truth_cohorts_are_not_empty_on_a_world(busy_world):
    for name in ("cla_31mar", "cppo_31mar", "cla_under_12m_31mar", "ever_cpp_6y",
                 "uasc_any_point"):
        persons, naive = truth_cohort(busy_world / "truth", name, 2025)
        assert persons and naive >= len(persons), name
