"""Benchmark the whole toolkit at scale: synthesise, hash, link, report, and the plaintext baseline.

Usage: python bench/scale_bench.py [--people 100000 1000000] [--ten-million] [--seed 7]
                                   [--work DIR] [--reuse]
       python bench/scale_bench.py --people 1000000 --report-only SPINE

For each world size: a synthetic world is written, every provider hashes its files, the bundles
are linked into a spine (family keys included) and reported on; then the same model is run on
the plaintext identifiers (ordinary string and date comparisons) as the baseline. Each stage
runs in a child process, so its wall time and peak memory are its own. Writes
bench/results/scale_<people>.json: per-stage wall time and peak memory, records, pairs
compared, accuracy (persons and family keys) against the world's truth, and the ratio of the
hashed link's time to the baseline's. 10,000,000 people (--ten-million) needs about 60 GB of
memory for synthesis and is opt-in. --reuse keeps a world and bundles already in --work.
--report-only times the report stage alone on a spine already linked, and writes
bench/results/report_<people>.json.
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
from itertools import pairwise
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = [100_000, 1_000_000]
TEN_MILLION = 10_000_000


def stage(name: str, *args: str) -> dict:
    """Run one stage in a child process; returns its JSON result with time and memory."""
    print(f"  {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "stage", name, *args], text=True,
                          capture_output=True, check=False)
    if done.returncode != 0:
        sys.exit(f"stage {name} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    print(f"  {name}: {result['wall_seconds']} s, peak {result['peak_memory_mib']} MiB",
          file=sys.stderr, flush=True)
    return result


def run_stage(name: str, args: list[str]) -> None:
    stages = {"synth": synth_stage, "hash": hash_stage, "link": link_stage,
              "report": report_stage, "plaintext": plaintext_stage}
    result = stages[name](*args)
    # the stage's process or, when it forks workers (hashing), its largest worker
    peak = max(resource.getrusage(who).ru_maxrss
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    result["peak_memory_mib"] = round(peak / 1024)
    print(json.dumps(result))


def synth_stage(people: str, seed: str, world: str) -> dict:
    from synthetic.world import build_world, load_config, write_world

    summary = write_world(build_world(int(people), int(seed), load_config()), Path(world))
    return {"records": summary["records"]}


def keyring(work: Path):
    """Every role's keys for the benchmark (made once per work folder): timings and accuracy
    do not depend on their values."""
    from linkage.pseudonymise.roles import Keyring

    folder = work / "keys"
    return Keyring(folder) if folder.is_dir() else Keyring.create(folder)


def hash_stage(providers: str, bundles: str, keys: str) -> dict:
    import json as json_

    from linkage.pipelines.delivery import hash_providers
    from linkage.pseudonymise.roles import Keyring

    started = time.perf_counter()
    written = hash_providers(Path(providers), Path(bundles), Keyring(Path(keys)).for_provider())
    seconds = time.perf_counter() - started
    records = sum(json_.loads((path / "manifest.json").read_text())["rows"]["out"]
                  for path in written)
    return {"bundles": len(written), "records": records,
            "records_per_second": round(records / seconds)}


def link_stage(world: str, bundles: str, spine: str, keys: str) -> dict:
    """Bundles to a written spine, family keys included, timed by stage; then scored."""
    from linkage.pipelines.link import link
    from linkage.pseudonymise.keys import load_key
    from linkage.pseudonymise.roles import Keyring
    from linkage.quality.evaluate import load_truth
    from linkage.quality.families import evaluate_families
    from linkage.spine.store import connect, current_records, family_tables

    marks: list[tuple[str, float]] = []
    started = time.perf_counter()
    ring = Keyring(Path(keys))
    summary = link(Path(spine), sorted(Path(bundles).iterdir()), ring.for_unit(), seed=1,
                   progress=lambda step: marks.append((step.split(" ")[0], time.perf_counter())))
    marks.append(("end", time.perf_counter()))
    seconds = time.perf_counter() - started
    stages = {a: round(t2 - t1, 1) for (a, t1), (_, t2) in pairwise(marks)}
    con = connect(Path(spine))
    linked, families = current_records(con), family_tables(con)
    con.close()
    # after linking: the peak is the link's
    truth, persons = load_truth(Path(world) / "truth", load_key(ring.linkage_key))
    return {"link_seconds": round(seconds, 1), "stages_seconds": stages,
            # the model's own run (train, score, cluster): the plaintext baseline's scope
            "model_seconds": stages.get("linking"), "records": len(linked),
            "pairs_scored": summary["pairs_scored"], **_person_scores(linked, truth, persons),
            "families": summary["families"],
            "family_accuracy": evaluate_families(families, linked, truth, persons,
                                                 Path(world) / "truth")}


def report_stage(spine: str, out: str) -> dict:
    """The linkage unit's report on the spine: its figures (DuckDB aggregates) and its page
    (charts rendered by vl-convert) timed apart."""
    from linkage.atomic import write_atomically
    from linkage.quality.page import render
    from linkage.quality.report import report_data

    started = time.perf_counter()
    data = report_data(Path(spine))
    figures = time.perf_counter() - started
    write_atomically(Path(out), render(data))
    return {"report_mib": round(Path(out).stat().st_size / 2**20, 2),
            "figures_seconds": round(figures, 2),
            "page_seconds": round(time.perf_counter() - started - figures, 2),
            "records": data["records"], "persons": data["persons"],
            "curves_from": data["curves"]["source"],
            "identifiers_recorded": data["identifiers"]["recorded"]}


def report_only(spine: Path, people: int, repeat: int = 3) -> dict:
    """The report stage alone on an existing spine, ``repeat`` times (a shared machine's load
    moves the wall time; the fastest run is the report's own cost): writes
    bench/results/report_<people>.json."""
    out = Path(tempfile.mkdtemp(prefix="report_bench_")) / "report.html"
    runs = []
    for _ in range(repeat):
        run = stage("report", str(spine), str(out))
        run["load_average_1min"] = round(os.getloadavg()[0], 2)
        runs.append(run)
    fastest = min(runs, key=lambda r: r["wall_seconds"])
    result = {"benchmark": "report", "people": people, "spine": str(spine),
              "spine_gib": round(spine.stat().st_size / 2**30, 2), "report": fastest,
              "wall_seconds_of_each_run": [r["wall_seconds"] for r in runs],
              "peak_memory_mib_of_each_run": [r["peak_memory_mib"] for r in runs],
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"report_{people}.json").write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(out.parent, ignore_errors=True)
    return result


def plaintext_stage(world: str) -> dict:
    """The same model on plaintext identifiers; reading the files is not part of its time."""
    from linkage.match.run import linking_table, train_and_predict
    from linkage.pipelines.delivery import provider_jobs
    from linkage.pseudonymise.bundle import linkage_schema, tokenise
    from linkage.quality.evaluate import load_truth
    from linkage.sources import read_source

    tables = [tokenise(read_source(kind, paths, provider=code), None, linkage_schema())
              for kind, code, paths, _ in provider_jobs(Path(world) / "providers")]
    table = linking_table(tables)
    del tables
    started = time.perf_counter()
    result = train_and_predict(table)
    seconds = time.perf_counter() - started
    linked = result.clusters.rename(columns={"cluster_id": "person_key"})
    truth, persons = load_truth(Path(world) / "truth")
    return {"link_seconds": round(seconds, 1), "records": len(linked),
            "pairs_scored": result.pairs_scored, **_person_scores(linked, truth, persons)}


def _person_scores(linked, truth, persons) -> dict:
    from linkage.quality.evaluate import evaluate

    scores = evaluate(linked, truth, persons)
    return {key: scores[key] for key in ("pairwise", "b_cubed", "persons_split",
                                         "persons_merged", "twins_merged")}


def run_size(people: int, seed: int, work: Path, reuse: bool, baseline: bool = True) -> dict:
    """Every stage for one world size; returns (and writes) its results."""
    print(f"{people:,} people in {work}", file=sys.stderr, flush=True)
    world, bundles, spine = work / "world", work / "bundles", work / "spine.duckdb"
    result: dict = {"benchmark": "scale", "people": people, "seed": seed}
    if not (reuse and (world / "truth").is_dir()):
        shutil.rmtree(world, ignore_errors=True)
        result["synth"] = stage("synth", str(people), str(seed), str(world))
    keys = str(keyring(work).folder)
    if not (reuse and bundles.is_dir() and any(bundles.iterdir())):
        shutil.rmtree(bundles, ignore_errors=True)
        result["hash"] = stage("hash", str(world / "providers"), str(bundles), keys)
    for old in work.glob("spine.duckdb*"):
        old.unlink()
    result["link"] = stage("link", str(world), str(bundles), str(spine), keys)
    result["report"] = stage("report", str(spine), str(work / "report.html"))
    if not baseline:
        return _write(result, people)
    result["plaintext_baseline"] = stage("plaintext", str(world))
    hashed, plain = result["link"], result["plaintext_baseline"]
    result["f1_hashed_minus_plaintext"] = round(
        hashed["pairwise"]["f1"] - plain["pairwise"]["f1"], 6)
    # like for like: the model's run on tokens against the same model's run on plaintext;
    # the whole link (bundles to written spine, with family keys) against it as well
    result["time_ratio_hashed_to_plaintext"] = round(
        hashed["model_seconds"] / plain["link_seconds"], 3)
    result["time_ratio_whole_link_to_plaintext"] = round(
        hashed["link_seconds"] / plain["link_seconds"], 3)
    return _write(result, people)


def _write(result: dict, people: int) -> dict:
    result["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "memory_limit": os.environ.get("LINKAGE_MEMORY_LIMIT", "6GB")}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"scale_{result['people']}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=SIZES)
    parser.add_argument("--ten-million", action="store_true",
                        help="add a 10,000,000-person world (about 60 GB of memory)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=None,
                        help="work here (a folder per size) and keep what is written")
    parser.add_argument("--reuse", action="store_true",
                        help="keep a world and bundles already in --work")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the plaintext baseline (the slowest stage)")
    parser.add_argument("--report-only", type=Path, default=None, metavar="SPINE",
                        help="only report on this linked spine (of --people people)")
    args = parser.parse_args()
    if args.report_only is not None:
        print(json.dumps(report_only(args.report_only, args.people[0]), indent=2))
        return
    sizes = args.people + ([TEN_MILLION] if args.ten_million else [])
    base = args.work or Path(tempfile.mkdtemp(prefix="scale_bench_"))
    summary = []
    for people in sizes:
        work = base / str(people)
        work.mkdir(parents=True, exist_ok=True)
        result = run_size(people, args.seed, work, args.reuse, not args.no_baseline)
        summary.append({"people": people, "link_seconds": result["link"]["link_seconds"],
                        "peak_memory_mib": result["link"]["peak_memory_mib"],
                        "f1": result["link"]["pairwise"]["f1"],
                        "time_ratio": result.get("time_ratio_hashed_to_plaintext")})
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "stage":
        run_stage(sys.argv[2], sys.argv[3:])
    else:
        main()
