"""Benchmark adding a delivery to a spine: new bundles linked alone, against one link of all.

Usage: python bench/incremental_bench.py [--people 20000] [--seed 7] [--work DIR] [--reuse]

On a synthetic world: (1) every bundle is linked into a spine; then a new agency's adoption
bundles (children and adopters of another synthetic world, under a new agency code) are given
alone, and every record and person key of the first version must be kept. (2) The world's
bundles less one agency's are linked, then that agency's bundles are given alone; the grown
spine's accuracy against the world's truth is set beside that of the single link of (1).
Writes bench/results/incremental_<people>.json.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.scale_bench import RESULTS, _person_scores, keyring

LATER = "vaa01_"  # the agency whose bundles arrive later in (2)


def _world(people: int, seed: int, folder: Path, reuse: bool) -> Path:
    from synthetic.world import build_world, load_config, write_world

    if not (reuse and (folder / "truth").is_dir()):
        write_world(build_world(people, seed, load_config()), folder)
    return folder


def _bundles(providers: Path, out: Path, ring, reuse: bool) -> list[Path]:
    from linkage.pseudonymise.providers import hash_providers

    if not (reuse and out.is_dir()):
        hash_providers(providers, out, ring.for_provider())
    return sorted(out.iterdir())


def _new_agency(work: Path, seed: int, ring) -> list[Path]:
    """A new agency's adoption files: another world's agency, renamed RAA02, hashed."""
    from linkage.pseudonymise.bundle import write_bundle
    from linkage.sources import read_source

    other = _world(3000, seed + 1000, work / "other_world", reuse=True)
    bundles = []
    for kind in ("asg-children", "asg-adopters"):
        text = (other / "providers/raa01/asg" / f"{kind.replace('-', '_')}.csv").read_text()
        path = work / "raa02" / f"{kind}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.replace("\nRAA01,", "\nRAA02,"))
        out = work / f"raa02_{kind}"
        if not out.is_dir():
            write_bundle(read_source(kind, [path], provider="RAA02"), ring.for_provider(), out)
        bundles.append(out)
    return bundles


def _linked(spine: Path, bundles: list[Path], ring) -> tuple[dict, float]:
    from linkage.pipelines.link import link

    started = time.perf_counter()
    summary = link(spine, bundles, ring.for_unit(), seed=1)
    return summary, round(time.perf_counter() - started, 1)


def _versions(spine: Path):
    import duckdb

    con = duckdb.connect(str(spine), read_only=True)
    try:
        frame = con.execute("SELECT * FROM person_record").df()
    finally:
        con.close()
    return [frame[frame.version == v].drop(columns="version")
            for v in sorted(frame.version.unique())]


def _kept(before, after) -> dict:
    joined = before.merge(after, on=["source", "provider", "record_id", "period"])
    return {"records_before": len(before), "records_after": len(after),
            "records_kept": len(joined),
            "keys_changed": int((joined.person_key_x != joined.person_key_y).sum())}


def run(people: int, seed: int, work: Path, reuse: bool) -> dict:
    from linkage.pseudonymise.keys import load_key
    from linkage.quality.evaluate import load_truth

    ring = keyring(work)
    world = _world(people, seed, work / "world", reuse)
    bundles = _bundles(world / "providers", work / "bundles", ring, reuse)
    truth, persons = load_truth(world / "truth", load_key(ring.linkage_key))
    whole = work / "whole.duckdb"
    for path in work.glob("*.duckdb*"):
        path.unlink()
    first, first_seconds = _linked(whole, bundles, ring)
    new = _new_agency(work, seed, ring)
    added, added_seconds = _linked(whole, new, ring)
    v1, v2 = _versions(whole)
    grown = work / "grown.duckdb"
    early, early_seconds = _linked(grown, [b for b in bundles if not b.name.startswith(LATER)],
                                   ring)
    late, late_seconds = _linked(grown, [b for b in bundles if b.name.startswith(LATER)], ring)
    g1, g2 = _versions(grown)
    return {
        "people": people, "seed": seed,
        "all_at_once": {"records": first["records"], "link_seconds": first_seconds,
                        **_person_scores(v1, truth, persons)},
        "new_agency_added": {"bundles": added["bundles"]["added"], "model": added["model"],
                             "link_seconds": added_seconds,
                             "records_added": added["records"] - first["records"],
                             "key_changes": added["key_changes"], **_kept(v1, v2)},
        "agency_later": {"first_records": early["records"], "first_seconds": early_seconds,
                         "records": late["records"], "link_seconds": late_seconds,
                         "model": late["model"], "key_changes": late["key_changes"],
                         **_kept(g1, g2), **_person_scores(g2, truth, persons)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true",
                        help="keep a world and bundles already in --work")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="linkage-incremental-"))
    work.mkdir(parents=True, exist_ok=True)
    result = run(args.people, args.seed, work, args.reuse)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"incremental_{args.people}.json"
    out.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
