"""Benchmark hashing (pseudonymisation) throughput for the default linkage schema.

Usage: python bench/hash_bench.py [--people 200000] [--world DIR] [--workers 2]
Makes a synthetic world (or uses --world), reads each source, and times tokenising and writing
the bundle. Writes bench/results/hash_<people>.json. The target is 100,000 records a second
for hashing on a 2-core machine; reading the files is timed separately.
"""

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from linkage.pseudonymise.bundle import linkage_schema, tokenise, write_bundle
from linkage.pseudonymise.roles import Keyring
from linkage.sources import read_source

RESULTS = Path(__file__).resolve().parent / "results"
SOURCES = {
    "school-census": ["providers/dfe/school_census"],
    "cin": ["providers/la_*/cin"],
    "ssda903": ["providers/la_*/ssda903"],
}
KEY = bytes(range(32))  # a benchmark key: the timing does not depend on its value


def world(people: int, seed: int, given: Path | None) -> Path:
    if given:
        return given
    from synthetic.world import build_world, load_config, write_world

    out = Path(tempfile.mkdtemp(prefix="hash_bench_")) / "world"
    write_world(build_world(people, seed, load_config()), out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--hardening", default="none", choices=["none", "balanced"])
    args = parser.parse_args()
    folder = world(args.people, args.seed, args.world)
    schema = linkage_schema()
    schema["bloom"]["hardening"] = args.hardening

    results = {}
    for kind, patterns in SOURCES.items():
        paths = sorted(p for pattern in patterns for p in folder.glob(pattern))
        started = time.perf_counter()
        data = read_source(kind, paths)
        read_seconds = time.perf_counter() - started
        started = time.perf_counter()
        tokenise(data, KEY, schema, workers=args.workers)
        token_seconds = time.perf_counter() - started
        with tempfile.TemporaryDirectory() as scratch:
            keys = Keyring.create(Path(scratch) / "keys").for_provider()
            keys.linkage_key = KEY
            started = time.perf_counter()
            write_bundle(data, keys, Path(scratch) / "bundle", schema, workers=args.workers)
            bundle_seconds = time.perf_counter() - started
            size = sum(p.stat().st_size for p in (Path(scratch) / "bundle").iterdir())
        n = len(data.records)
        results[kind] = {
            "records": n,
            "read_seconds": round(read_seconds, 2),
            "hash_seconds": round(token_seconds, 2),
            "hash_records_per_second": round(n / token_seconds),
            "bundle_seconds": round(bundle_seconds, 2),
            "bundle_records_per_second": round(n / bundle_seconds),
            "bundle_mib": round(size / 2**20, 1),
        }
        print(kind, results[kind], flush=True)
    total = sum(r["records"] for r in results.values())
    hash_seconds = sum(r["hash_seconds"] for r in results.values())
    result = {
        "benchmark": "hash",
        "people": args.people if args.world is None else None,
        "workers": args.workers,
        "bloom_hardening": args.hardening,
        "sources": results,
        "hash_records_per_second": round(total / hash_seconds),
        "peak_memory_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "target": "at least 100,000 records a second hashed",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.mkdir(exist_ok=True)
    suffix = "" if args.hardening == "none" else f"_{args.hardening}"
    name = f"hash_{args.people if args.world is None else 'world'}{suffix}.json"
    (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
