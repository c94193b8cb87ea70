"""Benchmark the matcher on person data made outside the project, through mappings only.

Usage: python bench/outside/run.py [--datasets febrl3,febrl4,gecko] [--cache DIR] [--out FILE]

For each data set: the hashed path (the project's CLI: hash through the mapping, link) and a
well-configured plaintext Splink 5 model on the raw data, both scored by pairwise precision,
recall and F1 against the truth. Writes one JSON (default bench/results/outside.json). A
hashed run that fails is recorded with its error, and the plaintext figures still written.
Done when, on each data set, hashed F1 >= plaintext F1 - 0.005.
"""

import argparse
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: the worktree's bench and linkage packages
    sys.path.insert(0, str(ROOT))
# the CLI runs in child processes: they must import this worktree's linkage too
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)

from bench.outside.data import DEFAULT_CACHE, dataset, sha256  # noqa: E402
from bench.outside.hashed import HashedRunError, run_hashed  # noqa: E402
from bench.outside.plaintext import run_plaintext  # noqa: E402

RESULT = ROOT / "bench" / "results" / "outside.json"
TOLERANCE = 0.005


def benchmark(name: str, cache: Path) -> dict:
    """One data set's figures: records, true pairs, hashed and plaintext scores, the gap."""
    data = dataset(name, cache)
    truth = data.truth()
    result = {"records": len(truth), "persons": int(truth.person_id.nunique()),
              "files": {p.name: sha256(p) for p in data.files},
              "mapping": str(data.mapping.relative_to(ROOT))}
    print(f"{name}: {len(truth):,} records; plaintext Splink...", file=sys.stderr)
    plain = run_plaintext(data, truth)
    result["true_pairs"] = plain["true_pairs"]
    result["plaintext"] = plain
    print(f"{name}: plaintext F1 {plain['f1']:.4f}; hashed path...", file=sys.stderr)
    try:
        hashed = run_hashed(data, truth)
    except HashedRunError as problem:
        result["hashed"] = {"error": str(problem)}
        result["gap"] = None
        result["done"] = False
        print(f"{name}: hashed path failed: {problem}", file=sys.stderr)
        return result
    result["hashed"] = hashed
    result["gap"] = round(plain["f1"] - hashed["f1"], 6)
    result["done"] = hashed["f1"] >= plain["f1"] - TOLERANCE
    print(f"{name}: hashed F1 {hashed['f1']:.4f} (gap {result['gap']:+.4f})", file=sys.stderr)
    return result


def main() -> None:
    """Run the chosen data sets and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="febrl3,febrl4,gecko",
                        help="comma-separated: febrl3, febrl4, gecko")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                        help="where fetched and generated data sets are kept")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    results = {name: benchmark(name, args.cache) for name in names}
    summary = {
        "benchmark": "outside",
        "criterion": f"hashed pairwise F1 >= plaintext F1 - {TOLERANCE} on each data set",
        "plaintext_threshold": 0.9,
        "datasets": results,
        "all_done": all(r["done"] for r in results.values()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({n: {"plaintext_f1": r["plaintext"]["f1"],
                          "hashed_f1": r["hashed"].get("f1"), "gap": r["gap"]}
                      for n, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
