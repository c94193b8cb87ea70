"""One LA's strategy tables before and after disclosure control, for checking suppression by
hand (the data custodian's view: true counts are printed, so never hand this output out).

Usage (from a folder laid out as the README's whole flow, e.g. a 20,000-person world):
    python bench/la_tables.py --spine spine.duckdb --custodian-key keys/custodian.key \\
        --register register --la 836 [--period 2024] [--cohort cla_any_point] bundles/*

The LA's children are those the LA itself counts in the cohort; waiting adopters are those
of the LA as an adoption agency. LA figures are suppressed, not rounded (as in cohort_by_la).
For each table it prints the true counts with totals, the table as released, and what the
checker (linkage.release.disclosure.leaks) finds: nothing, when no suppressed cell can be
worked back from its row, column or grand totals.
"""

import argparse
from pathlib import Path

import pandas as pd


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spine", type=Path, required=True)
    parser.add_argument("--custodian-key", type=Path, required=True)
    parser.add_argument("--register", type=Path, required=True)
    parser.add_argument("--la", required=True, help="the LA's code, e.g. 836")
    parser.add_argument("--period", type=int, default=2024)
    parser.add_argument("--cohort", default="cla_any_point")
    parser.add_argument("bundles", type=Path, nargs="+")
    args = parser.parse_args()

    from linkage.config import load_config
    from linkage.release.disclosure import leaks
    from linkage.release.tables import released_tables

    rules = load_config("disclosure.yaml")
    inputs = la_inputs(args)
    pd.set_option("display.width", 250, "display.max_columns", 20)
    print(f"LA {args.la}, cohort {args.cohort} {args.period}: {len(inputs.members)} children")
    for name, table in released_tables(inputs, rules, national=False).items():
        print(f"\n=== {name} ({table.level} ethnic groups) - before control")
        print(table.protected.counts.to_string())
        print(f"--- after control: {table.protected.actions}")
        print(table.protected.table.to_string())
        problems = leaks(table.protected.table, rules["suppressed"])
        print("--- checker:", "; ".join(problems) if problems else "no suppressed cell "
              "can be worked back")


def la_inputs(args):
    """The extract's table inputs, narrowed to the children one LA counts in the cohort and
    the adopters that LA approved as an agency."""
    from linkage.pseudonymise.bundle import open_bundles
    from linkage.pseudonymise.roles import custodian_keys
    from linkage.release.cohorts import COHORTS, events_of, unit_flags
    from linkage.release.content import content_tables, with_persons
    from linkage.release.extract import _person_attributes, _table_inputs, _wanted_tables
    from linkage.release.request import Request
    from linkage.spine.store import connect, current_records, family_tables

    con = connect(args.spine, read_only=True)
    try:
        records, families = current_records(con), family_tables(con)
    finally:
        con.close()
    request = Request("LA_TABLES", args.cohort, args.period, {}, False, {})
    bundles = open_bundles(args.bundles, custodian_keys(args.custodian_key, args.register))
    content = {key: with_persons(rows, records) for key, rows in
               content_tables(bundles, _wanted_tables(request, load_config_release())).items()}
    events = events_of(content)
    per_la = unit_flags(events, args.period, ["person_key", "provider"])
    counted = per_la[COHORTS[args.cohort](per_la).to_numpy()].reset_index()
    members = set(counted.person_key[counted.provider.astype(str) == str(args.la)])
    inputs = _table_inputs(request, members, _person_attributes(content), events, families,
                           content)
    adopters = inputs.asg_adopters
    inputs.asg_adopters = adopters[adopters.provider.astype(str) == str(args.la)]
    return inputs


def load_config_release() -> dict:
    from linkage.config import load_config

    return load_config("release.yaml")


if __name__ == "__main__":
    main()
