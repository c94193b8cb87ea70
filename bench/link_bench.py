"""Benchmark linking: a synthetic world hashed by every provider, linked into a spine, scored.

Usage: python bench/link_bench.py [--people 100000] [--seed 7] [--world DIR] [--keep DIR]
Stages run in child processes so each one's wall time and peak memory are its own. The same
model is also run on the plaintext identifiers (ordinary string and date comparisons) as the
baseline: accuracy and time are reported beside the hashed run, with the ratio of the two.
Writes bench/results/link_<people>.json.
"""

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from itertools import pairwise
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
KEY = bytes(range(32))  # a benchmark key: timings and accuracy do not depend on its value


def stage(name: str, *args: str) -> dict:
    """Run one stage in a child process; returns its JSON result with time and memory."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "stage", name, *args], text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit(f"stage {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


def run_stage(name: str, args: list[str]) -> None:
    result = {}
    if name == "synth":
        from synthetic.world import build_world, load_config, write_world

        write_world(build_world(int(args[0]), int(args[1]), load_config()), Path(args[2]))
    elif name == "hash":
        from linkage.pseudonymise.providers import hash_providers

        result["bundles"] = len(hash_providers(Path(args[0]), Path(args[1]), KEY))
    elif name in ("link", "plaintext"):
        result = link_stage(name, Path(args[0]), Path(args[1]), Path(args[2]))
    result["peak_memory_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    print(json.dumps(result))


def link_stage(name: str, world: Path, bundles: Path, spine: Path) -> dict:
    from linkage.match.run import linking_table, train_and_predict
    from linkage.pseudonymise.bundle import linkage_schema, tokenise
    from linkage.pseudonymise.providers import provider_jobs
    from linkage.quality.evaluate import evaluate, load_truth
    from linkage.sources import read_source
    from linkage.spine.update import link

    started = time.perf_counter()
    marks: list[tuple[str, float]] = []
    extra = {}
    if name == "link":
        summary = link(spine, sorted(bundles.iterdir()), seed=1,
                       progress=lambda stage: marks.append((stage.split(" ")[0],
                                                            time.perf_counter())))
        marks.append(("end", time.perf_counter()))
        stages = {a: round(t2 - t1, 1) for (a, t1), (_, t2) in pairwise(marks)}
        # the model's own run (train, score, cluster): the plaintext baseline's scope
        extra = {"stages_seconds": stages, "model_seconds": stages.get("linking"),
                 "families": summary["families"]}
        from linkage.spine.store import connect, current_records

        linked = current_records(connect(spine))
        pairs = summary["pairs_scored"]
    else:
        tables = [tokenise(read_source(kind, paths, provider=code), None, linkage_schema())
                  for kind, code, paths, _ in provider_jobs(world / "providers")]
        started = time.perf_counter()  # reading plaintext is not part of linking
        result = train_and_predict(linking_table(tables))
        linked = result.clusters.rename(columns={"cluster_id": "person_key"})
        pairs = result.pairs_scored
    seconds = time.perf_counter() - started
    truth, persons = load_truth(world / "truth")  # after linking: the peak is the link's
    scores = evaluate(linked, truth, persons)
    return {**extra, "link_seconds": round(seconds, 1), "records": len(linked),
            "pairs_scored": pairs,
            "pairwise": scores["pairwise"], "b_cubed": scores["b_cubed"],
            "persons_split": scores["persons_split"], "persons_merged": scores["persons_merged"],
            "twins_merged": scores["twins_merged"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--world", type=Path, default=None, help="use this world")
    parser.add_argument("--keep", type=Path, default=None, help="work in this folder")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="link_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    world = args.world or work / "world"
    result = {"benchmark": "link", "people": args.people, "seed": args.seed}
    if args.world is None:
        result["synth"] = stage("synth", str(args.people), str(args.seed), str(world))
    if (work / "bundles").is_dir() and any((work / "bundles").iterdir()):
        result["hash"] = {"reused": str(work / "bundles")}  # hashed by an earlier run
    else:
        result["hash"] = stage("hash", str(world / "providers"), str(work / "bundles"))
    for old in work.glob("spine.duckdb*"):
        old.unlink()
    result["link"] = stage("link", str(world), str(work / "bundles"), str(work / "spine.duckdb"))
    result["plaintext_baseline"] = stage("plaintext", str(world), str(work / "bundles"),
                                         str(work / "unused"))
    hashed, plain = result["link"], result["plaintext_baseline"]
    result["f1_hashed_minus_plaintext"] = round(
        hashed["pairwise"]["f1"] - plain["pairwise"]["f1"], 6)
    # like for like: the model's run on tokens against the same model's run on plaintext;
    # the whole link (bundles to written spine, with family keys) against it as well
    result["time_ratio_hashed_to_plaintext"] = round(
        hashed["model_seconds"] / plain["link_seconds"], 3)
    result["time_ratio_whole_link_to_plaintext"] = round(
        hashed["link_seconds"] / plain["link_seconds"], 3)
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"link_{args.people}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "stage":
        run_stage(sys.argv[2], sys.argv[3:])
    else:
        main()
