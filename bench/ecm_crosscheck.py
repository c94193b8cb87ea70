"""Cross-check Splink against recordlinkage's ECM classifier on the same candidate pairs.

Usage: python bench/ecm_crosscheck.py [--people 20000] [--seed 7] [--keep DIR] [--world DIR]

Two halves, in two environments, because recordlinkage needs pandas < 3 and this project
needs pandas >= 3:

1. ``export`` (this project's environment): hash the world (or reuse ``DIR/bundles``), train
   the Splink model as ``linkage link`` does, and write every candidate pair's comparison
   vector (Splink's gamma level per comparison) to ``DIR/ecm/pairs.parquet``, each record's
   true person to ``DIR/ecm/records.parquet`` and Splink's own scores to
   ``DIR/ecm/splink.json``.
2. ``classify`` (a separate environment with recordlinkage): binarise the vectors, fit
   ``recordlinkage.ECMClassifier``, and score its pairs, and the clusters they make, against
   the truth exactly as Splink's are scored.

The optional second environment, made once:

    python3 -m venv /work/.venv-rl
    /work/.venv-rl/bin/pip install 'pandas<3' recordlinkage pyarrow

Running without a subcommand does both (the second through ``--rl-python``, by default
``/work/.venv-rl/bin/python`` or $RL_PYTHON) and writes bench/results/ecm_crosscheck_<people>.json.
The script only reads the truth to score; neither classifier sees it.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
RL_PYTHON = os.environ.get("RL_PYTHON", "/work/.venv-rl/bin/python")


# ---- shared scoring (plain pandas and NumPy, runs in both environments) ----

def pair_counts(labels, persons) -> dict:
    """Pairwise precision, recall and F1 of a clustering against the true persons."""
    import pandas as pd

    frame = pd.DataFrame({"c": labels, "p": persons})

    def pairs(sizes):
        sizes = sizes.to_numpy().astype("int64")
        return int((sizes * (sizes - 1) // 2).sum())

    predicted, actual = pairs(frame.groupby("c").size()), pairs(frame.groupby("p").size())
    correct = pairs(frame.groupby(["c", "p"]).size())
    return _scores(correct, predicted, actual)


def _scores(correct: int, predicted: int, actual: int) -> dict:
    precision = correct / predicted if predicted else 1.0
    recall = correct / actual if actual else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": round(precision, 6), "recall": round(recall, 6), "f1": round(f1, 6),
            "true_pairs": actual, "predicted_pairs": predicted, "correct_pairs": correct}


def components(size: int, left, right):
    """Connected components (smallest member) of ``size`` nodes: plain clustering, by the
    project's own function (NumPy only, so it imports in the pandas < 3 environment too)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from linkage.match.components import connected_components

    return connected_components(size, left, right)


def score_pairs(pairs, matched, records) -> dict:
    """Scores of the pairs called matches: as pairs among the candidates, and as clusters
    (connected components of those pairs) over all records."""
    true = pairs.true_match.to_numpy().astype(bool)
    called = matched.astype(bool)
    candidate = _scores(int((true & called).sum()), int(called.sum()),
                        int(pair_counts(records.rid, records.person_id)["true_pairs"]))
    labels = components(len(records), pairs.rid_l.to_numpy()[called],
                        pairs.rid_r.to_numpy()[called])
    return {"pairs": candidate, "clusters": pair_counts(labels, records.person_id.to_numpy()),
            "true_pairs_among_candidates": int(true.sum())}


# ---- 1. export, in the project's environment ----

def export(world: Path, work: Path) -> dict:
    """Hash if needed, train Splink as `linkage link` does, write vectors and its scores."""
    import pandas as pd

    from linkage.match import run
    from linkage.match.model import settings
    from linkage.pipelines.delivery import hash_providers
    from linkage.pseudonymise.bundle import open_bundles
    from linkage.pseudonymise.keys import load_key
    from linkage.pseudonymise.roles import Keyring
    from linkage.quality.evaluate import evaluate, load_truth
    from linkage.sources.schema import RECORD_KEY

    bundles = work / "bundles"
    keys = Keyring(work / "keys") if (work / "keys").is_dir() else Keyring.create(work / "keys")
    if not (bundles.is_dir() and any(bundles.iterdir())):
        hash_providers(world / "providers", bundles, keys.for_provider())
    files = [b.token_table() for b in open_bundles(sorted(bundles.iterdir()), keys.for_unit())]
    truth, persons = load_truth(world / "truth", load_key(keys.linkage_key))

    started = time.perf_counter()
    result = run.train_and_predict(files, seed=1)  # the production run: clusters scored
    splink_seconds = time.perf_counter() - started
    linked = result.clusters.rename(columns={"cluster_id": "person_key"})
    production = evaluate(linked, truth, persons)

    # the same model again, keeping every candidate pair and its comparison vector
    from splink import Linker

    db_api = run.duckdb_api()
    records, columns, _ = run._register(db_api, files)
    model = settings(columns, counted_u=run.counted_u(db_api.duckdb_con, columns))
    model.retain_matching_columns = True  # Splink 5 keeps the gamma columns with these
    linker = Linker(records, model)
    run._train(linker, columns, 1)
    predictions = linker.inference.predict()
    con = db_api.duckdb_con
    gammas = [row[0] for row in con.execute(
        f"DESCRIBE {predictions.physical_name}").fetchall() if row[0].startswith("gamma_")]
    out = work / "ecm"
    out.mkdir(parents=True, exist_ok=True)
    truth_keys = truth.assign(record_id=truth.record_id.astype(str))[
        [*RECORD_KEY, "person_id"]]
    con.register("truth_keys", truth_keys)
    con.execute(f"""COPY (SELECT r.rid, t.person_id FROM linking_records r
        JOIN truth_keys t USING ({", ".join(RECORD_KEY)}) ORDER BY r.rid)
        TO '{out / "records.parquet"}' (FORMAT parquet)""").fetchall()
    con.execute(f"""COPY (
        SELECT p.rid_l, p.rid_r, {", ".join(f"p.{g}" for g in gammas)},
               p.match_probability AS splink_match_probability,
               tl.person_id = tr.person_id AS true_match
        FROM {predictions.physical_name} p
        JOIN linking_records l ON l.rid = p.rid_l JOIN linking_records r ON r.rid = p.rid_r
        JOIN truth_keys tl ON tl.source = l.source AND tl.provider = l.provider
             AND tl.period = l.period AND tl.record_id = l.record_id
        JOIN truth_keys tr ON tr.source = r.source AND tr.provider = r.provider
             AND tr.period = r.period AND tr.record_id = r.record_id
        ORDER BY p.rid_l, p.rid_r) TO '{out / "pairs.parquet"}' (FORMAT parquet)""").fetchall()
    pairs = pd.read_parquet(out / "pairs.parquet")
    ids = pd.read_parquet(out / "records.parquet")
    splink = {
        "model": "Splink 5 Fellegi-Sunter (this project's model), EM on blocked pairs, "
                 "term frequencies on sex+DOB",
        "link_seconds": round(splink_seconds, 1),
        "production_clusters": {k: production[k] for k in ("pairwise", "b_cubed",
                                                          "twins_merged")},
        "threshold_0.9": score_pairs(pairs, pairs.splink_match_probability >= 0.9, ids),
        "comparisons": [g.removeprefix("gamma_") for g in gammas],
    }
    (out / "splink.json").write_text(json.dumps(splink, indent=2) + "\n")
    return {"candidate_pairs": len(pairs), "records": len(ids)}


# ---- 2. classify, in the recordlinkage environment ----

def classify(work: Path) -> dict:
    """Fit ECM on binarised comparison vectors; score its matches like Splink's."""
    import pandas as pd
    import recordlinkage

    out = work / "ecm"
    pairs = pd.read_parquet(out / "pairs.parquet")
    ids = pd.read_parquet(out / "records.parquet")
    gammas = [c for c in pairs.columns if c.startswith("gamma_")]
    index = pd.MultiIndex.from_arrays([pairs.rid_l, pairs.rid_r])
    result = {"recordlinkage_version": recordlinkage.__version__,
              "pandas_version": pd.__version__, "variants": {}}
    # a comparison agrees if any of its agreement levels holds (a missing value disagrees,
    # as recordlinkage treats it); or, stricter, only at its top (exact) level
    variants = {
        "any_agreement_level": {g: pairs[g] > 0 for g in gammas},
        "top_level_only": {g: pairs[g] == pairs[g].max() for g in gammas},
    }
    for name, features in variants.items():
        binary = pd.DataFrame({g.removeprefix("gamma_"): v.astype("int8")
                               for g, v in features.items()}).set_index(index)
        started = time.perf_counter()
        ecm = recordlinkage.ECMClassifier(binarize=None)
        matches = ecm.fit_predict(binary)
        seconds = time.perf_counter() - started
        called = index.isin(matches)
        result["variants"][name] = {
            "fit_predict_seconds": round(seconds, 1),
            "p_match_estimated": round(float(ecm.p), 6),
            **score_pairs(pairs, called, ids)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=["export", "classify"])
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, default=Path("/tmp/ecm_crosscheck"))
    parser.add_argument("--world", type=Path, default=None)
    parser.add_argument("--rl-python", default=RL_PYTHON)
    args = parser.parse_args()
    work = args.keep
    world = args.world or work / "world"
    if args.command == "classify":
        print(json.dumps(classify(work)))
        return
    if args.world is None and not (world / "truth").is_dir():
        from synthetic.world import build_world, load_config, write_world

        write_world(build_world(args.people, args.seed, load_config()), world)
    exported = export(world, work)
    if args.command == "export":
        print(json.dumps(exported))
        return
    if not Path(args.rl_python).is_file():
        sys.exit(f"{args.rl_python}: no recordlinkage environment; make it as the module "
                 "docstring says, or give --rl-python")
    done = subprocess.run([args.rl_python, __file__, "classify", "--keep", str(work)],
                          text=True, capture_output=True, check=False)
    if done.returncode:
        sys.exit(f"classify failed:\n{done.stderr[-3000:]}")
    ecm = json.loads(done.stdout.strip().splitlines()[-1])
    splink = json.loads((work / "ecm" / "splink.json").read_text())
    report = {"benchmark": "ecm_crosscheck", "people": args.people, "seed": args.seed,
              **exported, "splink": splink, "recordlinkage_ecm": ecm,
              "note": "Same candidate pairs (Splink's blocking rules) for both. 'pairs' "
                      "scores the pairs called matches; recall there is over all true pairs, "
                      "blocked or not. 'clusters' are connected components of those pairs "
                      "(Splink's production clusters also keep conflicting records apart)."}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"ecm_crosscheck_{args.people}.json").write_text(
        json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
