"""Run every attack on the linkage unit's view of a synthetic world and write one JSON.

    python bench/attacks/run.py --world W --bundles B... --spine S \\
        --out bench/results/attacks_20000.json [--quick]

Attacks read only ``view.linkage_unit_view`` (and public knowledge; the membership insider
also holds the school census). Scoring (``score``) alone reads the world's plaintext.
Deterministic for a given ``--seed`` (the carry-over key is fresh, but no figure depends on
its value).
"""

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # run as a script from anywhere

from bench.attacks import carry_over, dob_structure, frequency, membership, pattern_mining, score
from bench.attacks.knowledge import ASSUMPTIONS, Knowledge, insider_school_census
from bench.attacks.view import View, linkage_unit_view


def timed(function: Callable, *args) -> tuple[object, float]:
    """``function(*args)`` and the seconds it took."""
    started = time.perf_counter()
    result = function(*args)
    return result, round(time.perf_counter() - started, 2)


def population_knowledge(world: Path, last_year: int) -> Knowledge:
    """The strong attacker's name frequencies: exact, for the people the data covers (an
    aggregate of the world's people, never a record; the 'known population' assumption)."""
    persons = pd.read_parquet(world / "truth" / "persons.parquet")
    covered = pd.read_parquet(world / "truth" / "records.parquet", columns=["person_id"])
    return Knowledge.from_population(persons[persons.person_id.isin(covered.person_id)],
                                     last_year)


def run_attacks(world: Path, bundles: list[Path], spine: Path | None, seed: int = 0,
                quick: bool = False, key: bytes | None = None,
                carry_over_bundles: int | None = None) -> dict:
    """Every attack on the view of ``bundles`` and ``spine``, scored against ``world``; the
    linkage unit's keys come from LINKAGE_UNIT_KEY and LINKAGE_REGISTER."""
    view, view_seconds = timed(linkage_unit_view, bundles, spine)
    knowledge = population_knowledge(world, int(view.tokens.period.max()))
    truth = score.aligned_truth(view, score.plaintext_records(world, key))
    results = {"records_attacked": len(view.tokens), "view_seconds": view_seconds,
               "assumptions": ASSUMPTIONS, "seed": seed, "quick": quick}
    results["chance"] = {column: _chance(_truth_of(view, truth, column))
                         for column in ("forename_bloom", "surname_bloom", "dob")}
    results["frequency"] = _frequency(view, knowledge, truth, seed)
    names, results["pattern_mining"] = _pattern_mining(view, knowledge, truth, seed)
    dob, results["dob_structure"] = _dob_structure(view, knowledge, truth)
    results["membership"] = _membership(view, world, names, dob)
    limit = carry_over_bundles or (3 if quick else None)
    results["carry_over"] = _carry_over(view, world, bundles, limit, seed, key)
    results["summary"] = _summary(results)
    return results


def _frequency(view: View, knowledge: Knowledge, truth: pd.DataFrame, seed: int) -> dict:
    guesses, seconds = timed(frequency.frequency_attack, view, knowledge, seed)
    columns = {}
    for column, strategies in guesses.items():
        expected = _truth_of(view, truth, column)
        shares = {name: score.exact_share(guess, expected) for name, guess in strategies.items()}
        chosen = frequency.chosen_strategy(column, strategies)
        columns[column] = {"chosen": chosen, "share": shares[chosen]["share"],
                           "records": shares[chosen]["records"],
                           "by_strategy": {n: s["share"] for n, s in shares.items()}}
    return {"seconds": seconds, "records_attacked": len(view.tokens), "columns": columns}


def _chance(values: pd.Series) -> float:
    """What guessing knows without any encoding: the share of records (with a value) holding
    the most common value, which an attacker gets by guessing it for everyone."""
    values = values.dropna()
    values = values[values.astype(str) != ""]
    return round(float(values.value_counts(normalize=True).iloc[0]), 4) if len(values) else 0.0


def _truth_of(view: View, truth: pd.DataFrame, column: str) -> pd.Series:
    if column in view.bloom_columns():
        return score.name_truth(truth, column)
    return truth[column] if column in truth else pd.Series(None, index=truth.index)


def _pattern_mining(view: View, knowledge: Knowledge, truth: pd.DataFrame, seed: int
                    ) -> tuple[dict[str, pd.Series], dict]:
    names, seconds = timed(pattern_mining.pattern_mining_attack, view, knowledge, seed)
    columns = {c: score.exact_share(g, score.name_truth(truth, c)) for c, g in names.items()}
    return names, {"seconds": seconds, "records_attacked": len(view.tokens),
                   "columns": columns}


def _dob_structure(view: View, knowledge: Knowledge, truth: pd.DataFrame
                   ) -> tuple[pd.Series, dict]:
    found, seconds = timed(dob_structure.dob_structure_attack, view, knowledge)
    expected = truth["dob"] if "dob" in truth else pd.Series(None, index=truth.index)
    candidates = found.candidates.dropna()
    return found.guess, {
        "seconds": seconds, "records_attacked": int(found.guess.notna().sum()),
        "exact_dob": score.exact_share(found.guess, expected),
        "birth_year": score.birth_year_share(found.guess, expected),
        "median_candidate_dates": float(candidates.median()) if len(candidates) else None}


def _membership(view: View, world: Path, names: dict[str, pd.Series], dob: pd.Series) -> dict:
    pupils = insider_school_census(world)
    found, seconds = timed(membership.membership_attack, view, pupils, names, dob)
    return {"seconds": seconds, "records_attacked": len(pupils), "method": found.method,
            "tied_share": found.tied_share,
            **score.membership_score(found.flags, pupils, world)}


def shuffled_view(view: View, seed: int) -> View:
    """The view with each bundle's rows in a random (seeded) order, positions renumbered."""
    tokens = view.tokens.sample(frac=1, random_state=seed).reset_index(drop=True)
    tokens["row"] = tokens.groupby("bundle").cumcount()
    return View(tokens, view.person_record, view.manifests)


def _carry_over(view: View, world: Path, bundles: list[Path], limit: int | None,
                seed: int, key: bytes | None) -> dict:
    """Hash the same providers again under a fresh key and tie key-2 records to key 1's."""
    non_empty = [b for b in bundles if _bundle_rows(b)]
    chosen = sorted(non_empty, key=_bundle_rows)[:limit] if limit else non_empty
    with tempfile.TemporaryDirectory(prefix="attack-key2-") as folder:
        two_paths, key2 = hash_again(world, [Path(b).name for b in chosen], Path(folder))
        one = linkage_unit_view(chosen, None)
        two = linkage_unit_view(two_paths, None)
        found, seconds = timed(carry_over.carry_over_attack, one, two)
        if key is not None:  # for scoring only: name key 2's records by key 1's pseudonyms
            two = _renamed(two, world, key2, key)
        per_method = {m: score.same_record_share(tie(one, two), two, one)["share"]
                      for m, tie in carry_over.TIES.items()}
        # what the fingerprints alone achieve once rows are shuffled (the new format)
        shuffled = shuffled_view(two, seed)
        per_method["graph fingerprints, rows shuffled"] = score.same_record_share(
            carry_over.tie_by_colours(one, shuffled), shuffled, one)["share"]
    return {"seconds": seconds, "records_attacked": len(two.tokens), "method": found.method,
            "bundles": [Path(b).name for b in chosen],
            "reidentified": score.same_record_share(found.rows, two, one),
            "share_by_method": per_method, "unique_fingerprint_share": found.unique_share}


def _renamed(view: View, world: Path, key_from: bytes, key_to: bytes) -> View:
    """The view with its record pseudonyms under ``key_from`` replaced by ``key_to``'s (the
    scorer's mapping, through the plain ids)."""
    plain = score.plaintext_records(world)[["provider", "record_id"]].drop_duplicates()
    mapping = dict(zip(score.record_pseudonyms(plain, key_from),
                       score.record_pseudonyms(plain, key_to), strict=True))
    tokens = view.tokens.assign(record_id=view.tokens.record_id.map(mapping))
    return View(tokens, view.person_record, view.manifests)


def _bundle_rows(path: Path) -> int:
    manifest = json.loads((Path(path) / "manifest.json").read_text())
    return manifest["rows"]["out"]


def hash_again(world: Path, names: list[str], out: Path) -> tuple[list[Path], bytes]:
    """The named bundles of ``world`` hashed again under a new linkage key (``linkage
    keygen``), the providers' other keys from the environment; returns them and the key."""
    from linkage.pipelines.delivery import folder_entries
    from linkage.pseudonymise.bundle import write_bundle
    from linkage.pseudonymise.keys import generate_key_file
    from linkage.pseudonymise.roles import provider_keys

    generate_key_file(out / "key2")
    keys = provider_keys(out / "key2")
    paths = [write_bundle(score.read_entry(entry), keys, out / entry.bundle).path
             for entry in folder_entries(world) if entry.bundle in names]
    return paths, keys.linkage_key


def _summary(results: dict) -> dict:
    """The headline shares: the best any attack reached."""
    names = results["pattern_mining"]["columns"]
    freq = results["frequency"]["columns"]

    def best(column: str) -> float:
        return max(names.get(column, {}).get("share", 0.0),
                   freq.get(column, {}).get("share", 0.0))

    dob = results["dob_structure"]
    chance = results["chance"]
    return {
        "exact_forename": best("forename_bloom"), "exact_surname": best("surname_bloom"),
        # beyond what guessing the commonest name for every record gives
        "exact_forename_beyond_chance": round(max(0.0, best("forename_bloom")
                                                  - chance["forename_bloom"]), 4),
        "exact_surname_beyond_chance": round(max(0.0, best("surname_bloom")
                                                 - chance["surname_bloom"]), 4),
        "exact_dob": max(dob["exact_dob"]["share"], freq.get("dob", {}).get("share", 0.0)),
        "birth_year": dob["birth_year"]["share"],
        "care_status_beyond_chance": results["membership"]["beyond_chance"],
        "care_status_precision": results["membership"]["precision"],
        "carry_over_reidentified": results["carry_over"]["reidentified"]["share"],
    }


def main(argv: list[str] | None = None) -> None:
    """Command line: run the attacks and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True, help="synthetic world (scoring)")
    parser.add_argument("--bundles", type=Path, nargs="+", required=True)
    parser.add_argument("--spine", type=Path, help="the linkage unit's spine.duckdb")
    parser.add_argument("--out", type=Path, required=True, help="JSON to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="carry-over on 3 small bundles")
    parser.add_argument("--key", type=Path, help="linkage key, for the SCORER only (maps "
                        "plain record ids to pseudonyms in the new format)")
    args = parser.parse_args(argv)
    key = None
    if args.key:
        from linkage.pseudonymise.keys import load_key
        key = load_key(args.key)
    results = run_attacks(args.world, args.bundles, args.spine, args.seed, args.quick, key)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(results["summary"], indent=2))


if __name__ == "__main__":
    main()
