"""Every cohort of configs/release.yaml on a linked synthetic world, against the world's truth.

Usage: python bench/cohort_bench.py DIR [--period 2025] [--out JSON]

DIR is laid out as the README's walk-through leaves it: world/ (with truth/), keys/, register/,
bundles/ and spine.duckdb. For each cohort three counts are set side by side:
- ``truth``: synthetic/truth_cohorts.py, from the world's own events (never the returns);
- ``returns_true_linkage``: linkage/release/cohorts.py on the returns' content, with each
  record's true person: differs from truth only where the cohort code is wrong;
- ``spine``: the same on the spine's persons, as ``linkage extract`` counts it: differs from
  the one above only by linkage error.
Also each LA's own count (summed), and the education-linkage counts. Writes JSON.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from linkage.config import load_config
from linkage.pseudonymise.bundle import open_bundles
from linkage.pseudonymise.keys import load_key
from linkage.pseudonymise.roles import custodian_keys
from linkage.quality.evaluate import load_truth
from linkage.release.cohorts import EVENT_TABLES, cohort, events_of
from linkage.release.content import content_tables, with_persons
from linkage.release.education import education_linkage
from linkage.sources.schema import RECORD_KEY, SOURCE_NAMES
from linkage.spine.store import connect, current_records
from synthetic.truth_cohorts import truth_cohort

RESULTS = Path(__file__).resolve().parent / "results"


def _content(bundles: list[Path], keys) -> dict:
    wanted = {source: {"record"} for source in SOURCE_NAMES}
    for source, table in EVENT_TABLES:
        wanted[source].add(table)
    return content_tables(open_bundles(bundles, keys), wanted)


def _true_records(truth: Path, linkage_key: bytes) -> pd.DataFrame:
    """The records with their true person as ``person_key``, named as the bundles name them
    (keyed pseudonyms of the providers' ids: the linkage key gives the same names)."""
    records, _ = load_truth(truth, linkage_key)
    return records[[*RECORD_KEY, "person_id"]].rename(
        columns={"person_id": "person_key"}).astype({"person_key": str})


def _counts(content: dict, records: pd.DataFrame, names: list[str], period: int) -> dict:
    joined = {key: with_persons(rows, records) for key, rows in content.items()}
    events = events_of(joined)
    rules = load_config("release.yaml")["education_linkage"]
    out = {}
    for name in names:
        members, per_la = cohort(events, name, period, records.person_key)
        out[name] = {"children": len(members), "sum_of_las": int(per_la.sum()),
                     **education_linkage(set(members), joined, records, rules)}
    return out


def compare(bundles: list[Path], keys, spine: Path, truth: Path, linkage_key: bytes,
            period: int) -> dict[str, dict]:
    """Per cohort: the truth's count, the returns' count with the true linkage and with the
    spine's, each LA's own count summed, and the education-linkage counts."""
    names = [c for c in load_config("release.yaml")["cohorts"] if c != "all"]
    content = _content(bundles, keys)
    con = connect(spine, read_only=True)
    try:
        spine_records = current_records(con)
    finally:
        con.close()
    true_linkage = _counts(content, _true_records(truth, linkage_key), names, period)
    linked = _counts(content, spine_records, names, period)
    cohorts = {}
    for name in names:
        members, per_la = truth_cohort(truth, name, period)
        cohorts[name] = {
            "truth": len(members), "truth_sum_of_las": int(per_la),
            "returns_true_linkage": true_linkage[name]["children"],
            "returns_true_linkage_sum_of_las": true_linkage[name]["sum_of_las"],
            "spine": linked[name]["children"],
            "spine_sum_of_las": linked[name]["sum_of_las"],
            "no_usable_upn": linked[name]["no_usable_upn"],
            "not_linked_to_pupil_data": linked[name]["not_linked_to_pupil_data"],
            "no_pupil_record_true_linkage": true_linkage[name]["not_linked_to_pupil_data"],
        }
    return cohorts


def run(folder: Path, period: int) -> dict:
    """``compare`` on a folder laid out as the README leaves it."""
    started = time.perf_counter()
    keys = custodian_keys(folder / "keys" / "custodian.key", folder / "register")
    cohorts = compare(sorted((folder / "bundles").iterdir()), keys, folder / "spine.duckdb",
                      folder / "world" / "truth",
                      load_key(folder / "keys" / "linkage.key", "linkage key"), period)
    world = json.loads((folder / "world" / "world.json").read_text(encoding="utf-8"))
    return {"people": world["people"], "seed": world["seed"], "period": period,
            "cohorts": cohorts,
            "all_equal_truth": all(c["truth"] == c["returns_true_linkage"] == c["spine"]
                                   for c in cohorts.values()),
            "seconds": round(time.perf_counter() - started, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--period", type=int, default=None,
                        help="the collection year (default: the world's last)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    world = json.loads((args.folder / "world" / "world.json").read_text(encoding="utf-8"))
    period = args.period or max(world["collection_years"])
    result = run(args.folder, period)
    out = args.out or RESULTS / f"cohorts_{world['people']}.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    width = max(map(len, result["cohorts"]))
    print(f"{'cohort':{width}}  truth  true-linkage  spine  (sums of LAs)")
    for name, c in result["cohorts"].items():
        print(f"{name:{width}}  {c['truth']:5}  {c['returns_true_linkage']:12}  {c['spine']:5}"
              f"  ({c['truth_sum_of_las']}, {c['returns_true_linkage_sum_of_las']}, "
              f"{c['spine_sum_of_las']})")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
