"""Benchmark family keys: a synthetic world hashed, linked (family keys included), and scored.

Usage: python bench/family_bench.py [--people 20000] [--seed 7] [--keep DIR]
Writes bench/results/families_<people>.json: the time family keys took within `link`, their
counts, and child-adopter, sibling and mother-child precision and recall against truth.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    from linkage.families.derive import derive_families
    from linkage.pipelines.delivery import hash_providers
    from linkage.pipelines.link import link
    from linkage.pseudonymise.bundle import open_bundles
    from linkage.pseudonymise.keys import load_key
    from linkage.pseudonymise.roles import Keyring
    from linkage.quality.evaluate import load_truth
    from linkage.quality.families import evaluate_families
    from linkage.spine.store import connect, current_records, family_tables
    from synthetic.world import build_world, load_config, write_world

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="family_bench_"))
    world, bundles, spine = work / "world", work / "bundles", work / "spine.duckdb"
    if not (world / "truth").is_dir():
        write_world(build_world(args.people, args.seed, load_config()), world)
    # every role's keys for the benchmark: accuracy does not depend on their values
    keys = Keyring(work / "keys") if (work / "keys").is_dir() else Keyring.create(work / "keys")
    if not bundles.is_dir():
        hash_providers(world / "providers", bundles, keys.for_provider())
    spine.unlink(missing_ok=True)
    started = time.perf_counter()
    summary = link(spine, sorted(bundles.iterdir()), keys.for_unit(), seed=1)
    link_seconds = time.perf_counter() - started

    con = connect(spine)
    linked, families = current_records(con), family_tables(con)
    con.close()
    started = time.perf_counter()  # family keys alone, as link ran them
    derive_families(open_bundles(sorted(bundles.iterdir()), keys.for_unit()), linked, "timing")
    family_seconds = time.perf_counter() - started
    records, persons = load_truth(world / "truth", load_key(keys.linkage_key))
    result = {"benchmark": "families", "people": args.people, "seed": args.seed,
              "link_seconds": round(link_seconds, 1),
              "family_keys_seconds": round(family_seconds, 1),
              "counts": summary["families"],
              **evaluate_families(families, linked, records, persons, world / "truth")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"families_{args.people}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
