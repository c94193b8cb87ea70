"""Benchmark `linkage synth`: wall time and peak memory for a world of N people.

Usage: python bench/synth_bench.py [--people 1000000] [--seed 7] [--out DIR]
Writes bench/results/synth_<people>.json. The world is written to a temporary folder (or --out)
and removed afterwards unless --keep is given.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the world written")
    args = parser.parse_args()

    out = args.out or Path(tempfile.mkdtemp(prefix="synth_bench_")) / "world"
    command = [sys.executable, "-m", "linkage.cli", "synth", "--people", str(args.people),
               "--seed", str(args.seed), "--out", str(out), "--json", "--quiet"]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"synth failed:\n{done.stderr}")
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    summary = json.loads(done.stdout)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    result = {
        "benchmark": "synth",
        "people": args.people,
        "seed": args.seed,
        "wall_seconds": round(seconds, 1),
        "peak_memory_mib": round(peak_kib / 1024, 1),
        "output_mib": round(size / 2**20, 1),
        "records": summary["records"],
        "looked_after": summary["services"]["looked_after"],
        "adopted": summary["services"]["adopted"],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform()},
        "target": "1,000,000 people in under 300 s",
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"synth_{args.people}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if not args.keep and args.out is None:
        shutil.rmtree(out.parent)


if __name__ == "__main__":
    main()
