"""Disclosure control worked by hand, ethnic groups, and the strategy tables: each on a small
hand-made frame with a hand-counted answer, and each as `linkage extract` releases it."""

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from linkage.cli import app
from linkage.config import load_config
from linkage.release import adoption_tables as adoption
from linkage.release.disclosure import (
    TOTAL,
    leaks,
    percentages,
    protect,
    recoverable,
    suppression_mask,
    with_totals,
)
from linkage.release.ethnic_groups import EthnicGroups, by_ethnic_group, grid
from linkage.release.tables import TableInputs, placement_moves, routes_out_of_care

RULES = load_config("disclosure.yaml")
MAJOR, DETAILED = EthnicGroups.load(False), EthnicGroups.load(True)
WHITE, MIXED, ASIAN, BLACK, OTHER, UNKNOWN = MAJOR.order


def table(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, index=[f"r{i}" for i in range(len(rows))],
                        columns=[f"c{j}" for j in range(len(rows[0]))])


def lone_lines(hidden) -> int:
    return sum(line.sum() == 1 for line in [*hidden, *hidden.T])


# ---------------------------------------------------------------- disclosure control

def test_percentages_come_from_the_true_counts_not_the_rounded_ones():
    # 15 of 30: the national table shows 20 and 30, which once gave 67%; the truth is 50%
    protected = protect(table([[15, 15], [20, 40]]), RULES, national=True)
    assert protected.table.loc["r0", "c0"] == "20" and protected.table.loc["r0", TOTAL] == "30"
    shares = percentages(protected, RULES)
    assert shares.loc["r0", "c0"] == "50" and shares.loc["r0", TOTAL] == "100"
    # halves go up (7 of 56 is 12.5%), not to the even neighbour
    assert percentages(protect(table([[7, 49]]), RULES), RULES).loc["r0", "c0"] == "13"


def test_percentages_are_hidden_where_the_part_or_the_whole_is_suppressed():
    protected = protect(table([[3, 10, 40], [20, 12, 30], [25, 50, 60]]), RULES)
    shares = percentages(protected, RULES)
    assert shares.loc["r0", "c0"] == "x" and shares.loc["r0", "c1"] == "x"  # 3 and partner 10
    assert shares.loc["r0", "c2"] == "75"
    whole_hidden = protect(table([[2, 2], [30, 40]]), RULES)
    assert (percentages(whole_hidden, RULES).loc["r0"] == "x").all()


def test_one_hidden_cell_in_a_row_gets_a_partner_in_that_row_and_their_columns():
    hidden, primary, secondary = suppression_mask(
        with_totals(table([[3, 10, 40], [20, 12, 30], [25, 50, 60]])), RULES)
    assert (primary, secondary) == (1, 3)
    assert hidden[:3, :3].tolist() == [[True, True, False], [True, True, False],
                                       [False, False, False]]
    assert lone_lines(hidden) == 0 and not recoverable(hidden).any()


def test_one_hidden_cell_in_a_column_whose_total_is_released_elsewhere():
    # children by LA: the national total is shown, so one hidden LA would be its difference
    counts = pd.DataFrame({"children": [3, 10, 40]}, index=["LA 1", "LA 2", "LA 3"])
    shown = protect(counts, RULES).table
    assert shown.loc["LA 1", "children"] == "c" and shown.loc["LA 2", "children"] == "c"
    assert shown.loc["LA 3", "children"] == "40"
    assert leaks(shown.drop(index=TOTAL), "c", total_released=True) == []
    assert leaks(pd.DataFrame({"children": ["c", "10", "40"], TOTAL: ["c", "10", "40"]},
                              index=["LA 1", "LA 2", "LA 3"]), "c", total_released=True)


def test_two_blocks_joined_by_one_cell_leave_it_recoverable_until_it_gets_a_partner():
    # blocks of small cells in r0-r1 x c0-c1 and r2-r3 x c2-c3, joined by x = (r1, c2) = 1:
    # every line hides two or more, yet (rows r0 + r1) - (columns c0 + c1) is exactly x
    counts = table([[2, 3, 50, 60, 70], [4, 5, 1, 80, 90], [50, 60, 2, 3, 70],
                    [80, 90, 4, 5, 60], [70, 80, 90, 60, 50]])
    full = with_totals(counts).to_numpy()
    lines_only = np.zeros(full.shape, bool)
    lines_only[[0, 0, 1, 1, 1, 2, 2, 3, 3], [0, 1, 0, 1, 2, 2, 3, 2, 3]] = True
    assert lone_lines(lines_only) == 0
    assert recoverable(lines_only)[1, 2] and recoverable(lines_only).sum() == 1
    rows = full[:2, -1].sum() - full[0, 2:5].sum() - full[1, 3:5].sum()  # hidden in r0, r1
    columns = full[-1, :2].sum() - full[2:-1, :2].sum()      # hidden in columns c0, c1
    assert rows - columns == 1                                # x, worked back
    hidden, _, _ = suppression_mask(with_totals(counts), RULES)
    assert hidden[1, 2] and not recoverable(hidden).any() and lone_lines(hidden) == 0


def test_a_rectangle_of_hidden_cells_shows_only_sums():
    # four hidden cells on two rows and two columns: each line gives one pair's sum, and the
    # four sums are three equations in four unknowns: no cell is determined
    hidden = np.zeros((3, 3), bool)
    hidden[:2, :2] = True
    assert not recoverable(hidden).any()
    hidden[2, 0] = hidden[2, 1] = True   # the column totals too: still none determined
    assert not recoverable(hidden).any()


def test_a_zero_is_never_the_partner_of_a_hidden_cell():
    hidden, _, _ = suppression_mask(with_totals(table([[3, 0, 40], [20, 30, 30]])), RULES)
    assert not hidden[0, 1] and hidden[0, 2]


def test_national_figures_are_suppressed_on_true_counts_then_rounded():
    protected = protect(table([[4, 5, 6, 46], [30, 30, 30, 30]]), RULES, national=True)
    row = protected.table.loc["r0"]
    assert row["c0"] == "c" and row["c1"] == "c"   # rounding first would show 0 and 10
    assert row["c2"] == "10" and row["c3"] == "50" and row[TOTAL] == "60"
    assert protected.actions["primary_suppressed"] == 2


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6).flatmap(lambda width: st.lists(
    st.lists(st.sampled_from([0, 0, 1, 2, 3, 4, 5, 6, 7, 12, 40]), min_size=width,
             max_size=width), min_size=1, max_size=8)))
def test_no_suppressed_entry_of_any_table_can_be_worked_back(rows):
    # tables of every shape, mostly small counts: the rules must hold whatever the data
    protected = protect(table(rows), RULES)
    assert lone_lines(protected.hidden) == 0
    assert not recoverable(protected.hidden).any()
    assert leaks(protected.table, "c") == []


def test_suppression_is_deterministic():
    counts = table([[3, 10, 40, 2], [20, 12, 30, 9], [25, 50, 60, 1], [7, 7, 7, 7]])
    first = protect(counts, RULES, national=True).table
    assert first.equals(protect(counts.copy(), RULES, national=True).table)


# ---------------------------------------------------------------- ethnic groups

def test_every_code_has_a_label_and_a_gss_major_group():
    codes = load_config("sources.yaml")["ethnicity"]["codes"]
    labels = DETAILED.labels(pd.Series(codes))
    assert not set(labels) & set(codes) and labels.nunique() == 20
    major = MAJOR.labels(pd.Series(["CHNE", "WROM", "WIRT", "MWBC", "BAFR", "OOTH", "REFU",
                                    "NOBT", "", None, "ZZZZ"]))
    assert major.tolist() == [ASIAN, WHITE, WHITE, MIXED, BLACK, OTHER, *[UNKNOWN] * 5]
    assert DETAILED.labels(pd.Series(["wrom"])).tolist() == ["Gypsy/Roma"]


def _children_by_code(codes: list[str]):
    ethnicity = pd.Series(codes, index=[f"p{k}" for k in range(len(codes))])
    return lambda groups: grid(groups.labels(ethnicity), pd.Series("children",
                                                                  index=ethnicity.index),
                               groups.order, ["children"], "Ethnic group")


def test_detailed_groups_where_counts_allow_else_major_groups():
    # 30 White British and 20 Black African: nothing suppressed, the detailed table is shown
    counts, _, level = by_ethnic_group(_children_by_code(["WBRI"] * 30 + ["BAFR"] * 20),
                                       RULES, national=False)
    assert level == "detailed" and counts.loc["White British", "children"] == 30
    # 3 of the 4 non-empty detailed cells would be hidden: major groups (White 38, Black 22)
    codes = ["WBRI"] * 30 + ["WIRI"] * 4 + ["WOTH"] * 4 + ["BAFR"] * 22
    counts, protected, level = by_ethnic_group(_children_by_code(codes), RULES, False)
    assert level == "major" and counts.loc[WHITE, "children"] == 38
    assert protected.table.loc[BLACK, "children"] == "22"


# ---------------------------------------------------------------- the tables, by hand

def frame(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def episodes(rows: list[tuple]) -> pd.DataFrame:
    out = frame([dict(zip(["person_key", "DECOM", "DEC", "RNE", "LS", "REC"], r, strict=True))
                 for r in rows], ["person_key", "DECOM", "DEC", "RNE", "LS", "REC"])
    return out.assign(DECOM=pd.to_datetime(out.DECOM), DEC=pd.to_datetime(out.DEC))


def inputs(ethnicity: dict, members=None, **parts) -> TableInputs:
    empty = pd.DataFrame(columns=["person_key"])
    defaults = {"episodes": episodes([]), "links": frame([], ["child_person_key",
                                                              "household_key"]),
                "households": frame([], ["household_key", "person_key"]),
                "sibling_groups": frame([], ["sibling_group_key", "person_key"]),
                "ad1": empty, "placed_adoption": empty, "asg_children": empty,
                "asg_adopters": empty}
    return TableInputs(members=set(members if members is not None else ethnicity),
                       period=2024, ethnicity=pd.Series(ethnicity), **{**defaults, **parts})


def test_child_against_adopters_ethnicity_by_hand():
    ethnicity = {"c1": "WBRI", "c2": "BAFR", "c3": "WIRI", "c4": "MWBC", "c5": "REFU",
                 "c6": "WBRI", "c7": "APKN", "a1": "WBRI", "a2": "WBRI", "a3": "WBRI",
                 "a3b": "WOTH", "a4": "WBRI", "a4b": "BCRB", "a5": "WBRI", "a6": "WBRI",
                 "a7": "BAFR", "a7b": "BAFR"}
    links = frame([{"child_person_key": f"c{k}", "household_key": f"h{k}"}
                   for k in range(1, 8)], ["child_person_key", "household_key"])
    households = frame([{"household_key": f"h{a[1]}", "person_key": a}
                        for a in ethnicity if a.startswith("a")],
                       ["household_key", "person_key"])
    given = inputs(ethnicity, members=[f"c{k}" for k in range(1, 8) if k != 6],
                   links=links, households=households)
    counts = adoption.adoption_ethnicity(given, MAJOR)
    assert counts.loc[WHITE, adoption.ONE_SAME] == 1              # c1
    assert counts.loc[BLACK, adoption.ONE_DIFFERENT] == 1         # c2
    assert counts.loc[WHITE, adoption.BOTH_SAME] == 1             # c3: two White adopters
    assert counts.loc[MIXED, adoption.ADOPTERS_DIFFER] == 1       # c4
    assert counts.loc[UNKNOWN, adoption.NOT_KNOWN] == 1           # c5 refused
    assert counts.loc[ASIAN, adoption.BOTH_DIFFERENT] == 1        # c7
    assert counts.to_numpy().sum() == 6                           # c6 is not in the cohort
    # by detailed groups c3 (White Irish) has adopters of two White groups: they differ
    detailed = adoption.adoption_ethnicity(given, DETAILED)
    assert detailed.loc["White Irish", adoption.ADOPTERS_DIFFER] == 1


def test_sibling_groups_make_up_and_placement_by_hand():
    ethnicity = {"a": "WBRI", "b": "WBRI", "c": "WBRI", "d": "MWBC", "e": "BAFR", "f": "BAFR",
                 "g": "WIRI", "h": "WBRI"}
    groups = frame([{"sibling_group_key": g, "person_key": p}
                    for g, people in {"g1": "ab", "g2": "cd", "g3": "ef", "g4": "gh"}.items()
                    for p in people], ["sibling_group_key", "person_key"])
    links = frame([{"child_person_key": c, "household_key": h}
                   for c, h in [("a", "h1"), ("b", "h1"), ("c", "h2"), ("g", "h3"),
                                ("h", "h4")]], ["child_person_key", "household_key"])
    counts = adoption.sibling_placements(inputs(ethnicity, sibling_groups=groups,
                                                links=links), MAJOR)
    together, apart, not_placed = adoption.PLACEMENTS
    assert counts.loc[WHITE, together] == 1 and counts.loc[WHITE, apart] == 1    # g1, g4
    assert counts.loc[adoption.SIBLINGS_DIFFER, apart] == 1                     # g2
    assert counts.loc[BLACK, not_placed] == 1                                    # g3
    assert counts.to_numpy().sum() == 4


def test_routes_out_of_care_keep_e4a_and_e4b_apart_by_hand():
    ethnicity = {f"p{k}": "WBRI" for k in range(1, 7)}
    rows = [("p1", "2023-01-01", "2023-06-01", "S", "C2", "E4A"),
            ("p2", "2023-01-01", "2023-07-01", "S", "V2", "E4B"),
            ("p3", "2022-01-01", "2023-05-01", "S", "E1", "X1"),
            ("p3", "2023-05-01", "2023-09-01", "P", "E1", "E11"),
            ("p4", "2023-01-01", "2023-08-01", "S", "C2", "E3"),
            ("p5", "2023-01-01", "2024-01-01", "S", "C2", "E2"),
            ("p6", "2021-01-01", "2023-03-01", "S", "C2", "E4A")]
    counts = routes_out_of_care(inputs(ethnicity, episodes=episodes(rows)), MAJOR)
    routes = load_config("tables.yaml")["routes"]
    labels = {code: r["label"] for r in routes for code in r["codes"]}
    assert counts.loc[WHITE, labels["E4A"]] == 1 and counts.loc[WHITE, labels["E4B"]] == 1
    assert counts.loc[WHITE, labels["E11"]] == 1                  # p3's last exit
    assert counts.loc[WHITE, "Other reason"] == 1                 # p5 (p4 moved LA)
    assert counts.to_numpy().sum() == 4                           # p6 left before the year


def test_placement_moves_by_hand():
    ethnicity = {"p1": "WBRI", "p2": "WBRI", "p3": "BAFR", "p4": "BAFR", "p5": "WBRI"}
    rows = [("p1", "2023-05-01", "2023-06-01", "S", "C2", "X1"),
            ("p1", "2023-06-01", "2023-07-01", "P", "C2", "X1"),
            ("p1", "2023-07-01", None, "T", "C2", ""),
            ("p2", "2022-01-01", None, "S", "C2", ""),
            ("p3", "2022-01-01", "2023-05-01", "S", "C1", "X1"),
            ("p3", "2023-05-01", None, "L", "C2", ""),
            *[("p4", f"2023-{m:02d}-01", f"2023-{m + 1:02d}-01", rne, "C2", "X1")
              for m, rne in [(4, "S"), (5, "P"), (6, "B"), (7, "U"), (8, "P")]],
            ("p5", "2020-01-01", "2022-01-01", "S", "C2", "E4A")]
    counts = placement_moves(inputs(ethnicity, episodes=episodes(rows)), MAJOR)
    assert counts.loc[WHITE].tolist() == [1, 0, 1, 0]   # p2 none; p1 two (P, T)
    assert counts.loc[BLACK].tolist() == [1, 0, 0, 1]   # p3 none (L); p4 four
    assert list(counts.columns)[1] == "1 placement change"


def test_time_from_entering_care_to_each_milestone_by_hand():
    ethnicity = {"p1": "WBRI", "p2": "BAFR", "p3": "WBRI"}
    rows = [("p1", "2022-01-10", "2023-05-01", "S", "C2", "X1"),
            ("p1", "2023-05-01", None, "L", "E1", ""),
            ("p3", "2021-01-10", "2022-05-01", "S", "C2", "X1"),
            ("p3", "2022-05-01", None, "L", "E1", "")]
    ad1 = frame([{"person_key": "p1", "DATE_MATCH": "2023-09-01"}], ["person_key",
                                                                      "DATE_MATCH"])
    placed = frame([{"person_key": "p1", "DATE_PLACED": "2023-10-01"}], ["person_key",
                                                                          "DATE_PLACED"])
    asg = frame([{"person_key": "p2", "date_entered_care": "2023-01-01",
                  "date_placement_order": "2023-04-15"}],
                ["person_key", "date_entered_care", "date_placement_order"])
    given = inputs(ethnicity, episodes=episodes(rows), ad1=ad1, placed_adoption=placed,
                   asg_children=asg)
    order = adoption.time_to("placement_order")(given, MAJOR)
    assert order.loc[WHITE, "12 to 17 months"] == 1          # p1: 15.7 months
    assert order.loc[BLACK, "0 to 5 months"] == 1            # p2 (ASG dates): 3.5 months
    assert order.to_numpy().sum() == 2                       # p3's order was in 2022
    assert adoption.time_to("match")(given, MAJOR).loc[WHITE, "18 to 23 months"] == 1
    assert adoption.time_to("placement")(given, MAJOR).loc[WHITE, "18 to 23 months"] == 1


def test_children_waiting_against_adopters_waiting_by_hand():
    ethnicity = {"p1": "WBRI", "p2": "WBRI", "p3": "BAFR", "p4": "WBRI", "p5": "WBRI",
                 **{f"a{k}": "WBRI" for k in range(1, 7)}, "a5b": "BAFR"}
    rows = [("p1", "2023-01-01", None, "L", "E1", ""),
            ("p2", "2023-01-01", None, "L", "E1", ""),
            ("p3", "2023-01-01", None, "S", "C2", ""),
            ("p4", "2023-01-01", "2024-01-01", "L", "E1", "E4A"),
            # matched in an earlier period of care, home, back in care: waiting again
            ("p5", "2020-01-01", "2021-01-01", "S", "E1", "E4A"),
            ("p5", "2023-02-01", None, "S", "E1", "")]
    ad1 = frame([{"person_key": "p2", "DATE_MATCH": "2024-02-01"},
                 {"person_key": "p5", "DATE_MATCH": "2020-06-01"}], ["person_key",
                                                                     "DATE_MATCH"])
    asg = frame([{"person_key": "p3", "date_should_be_placed": "2023-10-01"}],
                ["person_key", "date_should_be_placed"])
    adopters = frame([
        {"person_key": "a1", "date_approved": "2023-06-01"},
        {"person_key": "a2", "date_approved": "2023-06-01", "date_matched": "2024-01-01"},
        {"person_key": "a3", "date_approved": "2023-06-01", "date_left": "2024-02-01"},
        {"person_key": "a4", "date_approved": "2024-05-01"},
        {"person_key": "a5", "date_approved": "2023-06-01"},
        {"person_key": "a5b", "date_approved": "2023-06-01"},
        # adopted before, approved again: waits again
        {"person_key": "a6", "date_approved": "2021-01-01", "date_matched": "2021-06-01"},
        {"person_key": "a6", "date_approved": "2023-09-01"}],
        ["person_key", "date_approved", "date_matched", "date_left"])
    households = frame([{"household_key": f"h{p[1]}", "person_key": p}
                        for p in ethnicity if p.startswith("a")],
                       ["household_key", "person_key"])
    given = inputs(ethnicity, members=["p1", "p2", "p3", "p4", "p5"], episodes=episodes(rows),
                   ad1=ad1, asg_children=asg, asg_adopters=adopters, households=households)
    assert list(adoption.waiting_children(given)) == ["p1", "p3", "p5"]
    assert list(adoption.waiting_households(given)) == ["h1", "h5", "h6"]
    released = adoption.waiting(given, {**RULES, "min_count": 1, "min_count_floor": 1},
                                national=False)
    shown = released.protected.table
    assert shown.loc[WHITE].tolist() == ["2", "2"] and shown.loc[BLACK].tolist() == ["1", "0"]
    assert shown.loc[adoption.ADOPTERS_DIFFER].tolist() == ["0", "1"]
    assert shown.loc[TOTAL].tolist() == ["3", "3"]
    # an agency with no adopters approved by 31 March waits for nobody
    none_yet = inputs(ethnicity, asg_adopters=adopters[adopters.person_key == "a4"],
                      households=households)
    assert list(adoption.waiting_households(none_yet)) == []


# ---------------------------------------------------------------- as an extract releases them

@pytest.fixture(scope="module")
def released(linked_spine, world_bundles, tmp_path_factory):
    spine, _ = linked_spine
    folder = tmp_path_factory.mktemp("tables")
    request = folder / "request.yaml"
    request.write_text(yaml.safe_dump({"project": "P0009", "cohort": "cla_any_point",
                                       "period": 2024, "datasets": {}, "family_keys": False}))
    result = CliRunner().invoke(app, ["extract", "--spine", str(spine), "--request",
                                      str(request), "--out", str(folder / "out"),
                                      *map(str, world_bundles)])
    assert result.exit_code == 0, result.output
    return folder / "out"


STRATEGY = ["adoption_ethnicity", "sibling_groups", "routes_out_of_care", "placement_moves",
            "time_to_placement_order", "time_to_match", "time_to_placement",
            "children_and_adopters_waiting"]


def test_every_strategy_table_is_released_with_what_control_did(released):
    manifest = json.loads((released / "manifest.json").read_text())
    codes = set(load_config("ethnic_groups.yaml")["codes"])
    for name in STRATEGY:
        path = released / "tables" / f"{name}.csv"
        header = path.read_text().splitlines()[0].split(",")
        assert header[0] and all(header), name          # no blank header cell
        shown = pd.read_csv(path, index_col=0, dtype=str)
        assert not codes & set(shown.index), name        # labels, never codes
        assert shown.index[-1] == TOTAL
        assert manifest["disclosure"][name]["ethnic_groups"] in ("detailed", "major")
    assert (released / "tables" / "routes_out_of_care_percent.csv").is_file()


def test_no_suppressed_cell_of_any_released_table_can_be_worked_back(released):
    tables = sorted((released / "tables").glob("*.csv"))
    assert len(tables) >= len(STRATEGY)
    hidden_somewhere = 0
    for path in tables:
        if path.stem == "cohort_national" or path.stem.endswith("_percent"):
            continue
        shown = pd.read_csv(path, index_col=0, dtype=str)
        total_released = path.stem == "cohort_by_la"   # its total is in cohort_national
        assert leaks(shown, "c", total_released=total_released) == [], path.name
        hidden_somewhere += int((shown == "c").to_numpy().sum())
    assert hidden_somewhere > 0   # the checker had suppressed cells to check


def test_a_cohort_with_no_looked_after_child_gives_every_table_in_zeros():
    from linkage.release.tables import strategy_tables

    csvs, disclosure = strategy_tables(inputs({"p1": "WBRI"}), RULES)
    assert {f"tables/{name}.csv" for name in STRATEGY} <= set(csvs)
    for name, shown in csvs.items():
        assert set(shown.to_numpy().ravel()) <= {"0", "x"}, name
    assert disclosure["routes_out_of_care"]["primary_suppressed"] == 0
