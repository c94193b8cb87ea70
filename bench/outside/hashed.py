"""The hashed path: the project's own CLI end to end, through the data set's mapping only.

A rehearsal keyring (every role's keys in one folder), then ``linkage hash --source generic
--mapping M`` as the provider would, ``linkage link`` as the linkage unit would, and the
spine's clusters scored against the truth. The spine names records by keyed pseudonyms of
the provider's record ids, so the truth's ids are given the same pseudonyms with the
rehearsal's linkage key (as ``linkage.quality.evaluate.load_truth`` does).
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from bench.outside.data import DataSet
from bench.outside.scores import pairwise_scores
from linkage.bounded_yaml import read_yaml

LINK_SEED = 1
BENCH_KEY = hashlib.sha256(b"linkage bench/outside rehearsal key").hexdigest()


class HashedRunError(Exception):
    """A CLI step failed: its command and the end of its error output."""


def run_hashed(data: DataSet, truth: pd.DataFrame, work: Path | None = None,
               workers: int = 2) -> dict:
    """Hash and link ``data`` with the CLI; pairwise scores of the spine against ``truth``."""
    from linkage.pseudonymise.bundle import record_pseudonyms
    from linkage.pseudonymise.keys import load_key
    from linkage.pseudonymise.roles import Keyring
    from linkage.spine.store import connect, current_records

    with tempfile.TemporaryDirectory(prefix=f"outside_{data.name}_", dir=work) as tmp:
        folder = Path(tmp)
        ring = Keyring.create(folder / "keys")
        # a fixed rehearsal linkage key (public data, a benchmark): the same tokens, so the
        # same figures, each run; the other keys only seal and sign, and change nothing
        ring.linkage_key.write_text(BENCH_KEY + "\n", encoding="ascii")
        # LINKAGE_DEBUG: a crash prints its traceback, which the result then records
        env = {**os.environ, **ring.env(), "LINKAGE_DEBUG": "1"}
        bundle, spine = folder / "bundle", folder / "spine.duckdb"
        started = time.perf_counter()
        _cli(["hash", "--source", "generic", "--mapping", str(data.mapping),
              "--provider", provider(data), "--out", str(bundle), "--workers", str(workers),
              "--quiet", *map(str, data.files)], env)
        hashed_at = time.perf_counter()
        _cli(["link", "--spine", str(spine), "--unit-key", str(ring.unit_key),
              "--register", str(ring.register), "--seed", str(LINK_SEED), "--quiet",
              str(bundle)], env)
        linked_at = time.perf_counter()
        con = connect(spine)
        linked = current_records(con)
        con.close()
        key = load_key(ring.linkage_key)
    named = truth.assign(record_id=record_pseudonyms(
        pd.Series(provider(data), index=truth.index), truth.record_id, key))
    scores = pairwise_scores(linked.rename(columns={"person_key": "cluster_id"}), named)
    return {**scores, "seconds": round(linked_at - started, 1),
            "hash_seconds": round(hashed_at - started, 1),
            "link_seconds": round(linked_at - hashed_at, 1),
            "persons": int(linked.person_key.nunique())}


def provider(data: DataSet) -> str:
    """The provider code the mapping gives (the bundle's records carry it)."""
    mapping = read_yaml(data.mapping)
    return str(mapping.get("provider") or data.name)


def _cli(arguments: list[str], env: dict[str, str]) -> None:
    # a child process, as an operator runs it: a crash is a result to record, not ours
    done = subprocess.run([sys.executable, "-m", "linkage.cli", *arguments], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
        raise HashedRunError(f"linkage {arguments[0]} exited {done.returncode}: "
                             + "\n".join(tail))
