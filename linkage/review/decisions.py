"""Clerical review decisions: pairs of records a reviewer called one person, or two.

A decisions file is JSON as the review page saves it (``{"format": "linkage-review-decisions",
"spine_version": N, "pairs_sha256": ..., "decisions": [{"record_l", "record_r", "decision",
"note"}]}``) or CSV with the columns record_l, record_r, decision (and an optional note). Each
pair names its records by their unique id, ``source|provider|period|record_id`` (the record
id being the provider's keyed pseudonym), and is decided ``match`` or ``non-match``.

``link`` applies them as constraints: a match (must-link) puts the two records in one person,
a non-match (cannot-link) keeps them apart, even through a chain of other pairs. The spine
keeps every decision (table ``review_decision``) and applies it again at each later link; a
later decision on the same pair replaces the earlier one. A held decision whose records have
left the spine is set aside and counted. Messages name the file, the decision's row and the
field, never a record's id.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from linkage.match.components import connected_components

MATCH, NON_MATCH = "match", "non-match"
DECISIONS = (MATCH, NON_MATCH)
FILE_FORMAT = "linkage-review-decisions"
MAX_FILE_BYTES = 64 * 1024 * 1024   # a review round is hundreds of pairs, not millions
PAIR = ["record_l", "record_r"]
# what the spine keeps of each decision in force (no note: free text could hold a name)
HELD_COLUMNS = [*PAIR, "decision", "file_sha256", "decided_in_version"]


class DecisionError(Exception):
    """A decisions file cannot be applied; the message names the file, row and field."""


@dataclass(frozen=True)
class DecisionFile:
    """One decisions file, read and checked on its own."""

    path: Path
    sha256: str
    spine_version: int | None     # the spine version the reviewer saw (None: not said)
    pairs_sha256: str | None      # the review page's fingerprint of its pairs
    rows: pd.DataFrame            # record_l < record_r, decision, where (row label)

    def summary(self) -> dict:
        """What the spine's version and audit log record of the file (no record id)."""
        return {"file": str(self.path), "sha256": self.sha256, "decisions": len(self.rows),
                "spine_version": self.spine_version, "pairs_sha256": self.pairs_sha256}


def read_decisions(path: Path) -> DecisionFile:
    """Read and check one decisions file (JSON, or CSV by its .csv suffix)."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise DecisionError(f"{path}: is larger than {MAX_FILE_BYTES // 2**20} MB; a "
                                "decisions file holds one review round's pairs")
        data = path.read_bytes()
    except OSError as problem:
        raise DecisionError(f"{path}: cannot be read ({problem.strerror})") from None
    sha = hashlib.sha256(data).hexdigest()
    if path.suffix.lower() == ".csv":
        rows, version, pairs_sha = _csv_rows(path, data), None, None
    else:
        rows, version, pairs_sha = _json_rows(path, data)
    return DecisionFile(path, sha, version, pairs_sha, _checked_rows(path, rows))


def _json_rows(path: Path, data: bytes) -> tuple[pd.DataFrame, int | None, str | None]:
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise DecisionError(f"{path}: is not JSON (a decisions file saved by the review page, "
                            "or CSV with columns record_l, record_r, decision)") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("decisions"), list):
        raise DecisionError(f"{path}: decisions: missing; the file must be an object with a "
                            "decisions list, as the review page saves it")
    if doc.get("format", FILE_FORMAT) != FILE_FORMAT:
        raise DecisionError(f"{path}: format: must be {FILE_FORMAT}")
    version = doc.get("spine_version")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)
                                or version < 1):
        raise DecisionError(f"{path}: spine_version: must be a whole number from 1")
    pairs_sha = doc.get("pairs_sha256")
    if pairs_sha is not None and not isinstance(pairs_sha, str):
        raise DecisionError(f"{path}: pairs_sha256: must be text")
    records = []
    for number, entry in enumerate(doc["decisions"], start=1):
        if not isinstance(entry, dict):
            raise DecisionError(f"{path}: decision {number}: must be an object with record_l, "
                                "record_r and decision")
        records.append({**{k: entry.get(k) for k in (*PAIR, "decision", "note")},
                        "where": f"decision {number}"})
    return _frame(records), version, pairs_sha


def _csv_rows(path: Path, data: bytes) -> pd.DataFrame:
    import csv
    import io

    try:
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
        header = reader.fieldnames or []
        missing = [c for c in (*PAIR, "decision") if c not in header]
        if missing:
            raise DecisionError(f"{path}: row 1: missing column {', '.join(missing)} (a "
                                "decisions CSV has record_l, record_r, decision)")
        records = [{**{k: row.get(k) for k in (*PAIR, "decision", "note")},
                    "where": f"row {reader.line_num}"} for row in reader]
    except (UnicodeDecodeError, csv.Error):
        raise DecisionError(f"{path}: is not UTF-8 CSV") from None
    return _frame(records)


def _frame(records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=[*PAIR, "decision", "note", "where"])


def _checked_rows(path: Path, rows: pd.DataFrame) -> pd.DataFrame:
    """Each row well formed (two different unique ids, a decision), its pair in order, and
    no pair decided both ways; the first problem is refused, naming its row and field."""
    for column in (*PAIR, "decision"):
        bad = rows[~rows[column].map(lambda v: isinstance(v, str) and v != "")]
        if len(bad):
            raise DecisionError(f"{path}: {bad['where'].iloc[0]}: {column}: missing or not "
                                "text")
    for column in PAIR:
        bad = rows[~rows[column].map(_is_unique_id)]
        if len(bad):
            raise DecisionError(f"{path}: {bad['where'].iloc[0]}: {column}: not a record's "
                                "unique id (source|provider|period|record_id)")
    bad = rows[~rows.decision.isin(DECISIONS)]
    if len(bad):
        raise DecisionError(f"{path}: {bad['where'].iloc[0]}: decision: must be match or "
                            "non-match")
    notes = rows.note.map(lambda v: v is None or isinstance(v, str))
    if not notes.all():
        raise DecisionError(f"{path}: {rows['where'][~notes].iloc[0]}: note: must be text")
    same = rows[rows.record_l == rows.record_r]
    if len(same):
        raise DecisionError(f"{path}: {same['where'].iloc[0]}: record_r: is the same record "
                            "as record_l")
    swap = rows.record_l > rows.record_r
    left = rows.record_l.where(~swap, rows.record_r)
    rows = rows.assign(record_l=left, record_r=rows.record_r.where(~swap, rows.record_l))
    both = rows.groupby(PAIR).decision.transform("nunique") > 1
    if both.any():
        places = rows["where"][both].tolist()
        raise DecisionError(f"{path}: {places[1]}: decision: the same pair is decided both "
                            f"ways ({places[0]} and {places[1]})")
    return rows.drop(columns="note").drop_duplicates(PAIR, keep="last").reset_index(drop=True)


def _is_unique_id(value: object) -> bool:
    parts = value.split("|") if isinstance(value, str) else []
    return len(parts) == 4 and all(parts) and parts[2].isdigit()


@dataclass
class Resolved:
    """The decisions a link applies: must-links and cannot-links by unique id, and the
    decisions in force the new version keeps (held ones not replaced, then the given)."""

    must: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR))
    cannot: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIR))
    in_force: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(
        columns=[*HELD_COLUMNS, "applied"]))
    counts: dict = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(len(self.must) or len(self.cannot))


def resolve(files: list[DecisionFile], held: pd.DataFrame, known: pd.Series,
            spine_version: int) -> Resolved:
    """Check the files' decisions against the records this link holds (``known``: unique
    ids) and the decisions the spine holds (``held``: HELD_COLUMNS), and return what applies.

    Refused: a file made on a later version than this spine has (another spine), a record
    no bundle holds, a pair two files decide both ways, and match decisions that chain the
    two records of a non-match. A held decision whose records are gone is set aside."""
    given = _given(files, spine_version)
    known_ids = pd.Index(known.unique())
    for column in PAIR:
        unknown = given[~given[column].isin(known_ids)]
        if len(unknown):
            first = unknown.iloc[0]
            raise DecisionError(f"{first.file}: {first['where']}: {column}: no such record in "
                                "the spine or the bundles given (its unique id is "
                                "source|provider|period|record_id)")
    held = held[HELD_COLUMNS] if len(held) else pd.DataFrame(columns=HELD_COLUMNS)
    replaced = held.set_index(PAIR).index.isin(given.set_index(PAIR).index)
    kept = held[~replaced]
    present = kept.record_l.isin(known_ids) & kept.record_r.isin(known_ids)
    in_force = pd.concat([kept.assign(applied=present.to_numpy()),
                          given[HELD_COLUMNS].assign(applied=True)], ignore_index=True)
    in_force = in_force.sort_values(PAIR, ignore_index=True)
    applied = in_force[in_force.applied]
    _refuse_chained_apart(applied, given)
    must = applied[applied.decision == MATCH][PAIR].reset_index(drop=True)
    cannot = applied[applied.decision == NON_MATCH][PAIR].reset_index(drop=True)
    counts = {"files": [f.summary() for f in files], "given": len(given),
              "held": len(kept), "replaced": int(replaced.sum()),
              "set_aside": int((~present).sum()), "match": len(must), "non_match": len(cannot)}
    return Resolved(must, cannot, in_force, counts)


def _given(files: list[DecisionFile], spine_version: int) -> pd.DataFrame:
    """All files' rows, each with its file; refused if two files decide a pair both ways, or
    a file was made on a spine version this spine has not reached."""
    for f in files:
        if f.spine_version is not None and f.spine_version > spine_version:
            raise DecisionError(f"{f.path}: spine_version: {f.spine_version} is later than "
                                f"this spine's latest version ({spine_version}): the file "
                                "was made on another spine")
    frames = [f.rows.assign(file=str(f.path), file_sha256=f.sha256,
                            decided_in_version=f.spine_version) for f in files]
    given = (pd.concat(frames, ignore_index=True) if frames else
             pd.DataFrame(columns=[*PAIR, "decision", "where", "file", "file_sha256",
                                   "decided_in_version"]))
    both = given.groupby(PAIR).decision.transform("nunique") > 1
    if both.any():
        first, second = given[both].iloc[0], given[both].iloc[1]
        raise DecisionError(f"{second.file}: {second['where']}: decision: the same pair is "
                            f"decided the other way in {first.file}, {first['where']}")
    # a later file's decision on a pair replaces an earlier file's
    return given.drop_duplicates(PAIR, keep="last").reset_index(drop=True)


def _refuse_chained_apart(applied: pd.DataFrame, given: pd.DataFrame) -> None:
    """Refuse match decisions that join, through a chain, the two records of a non-match."""
    ids = pd.Index(pd.unique(applied[PAIR].to_numpy().ravel()))
    must = applied[applied.decision == MATCH]
    cannot = applied[applied.decision == NON_MATCH]
    if must.empty or cannot.empty:
        return
    component = connected_components(len(ids), ids.get_indexer(must.record_l),
                                     ids.get_indexer(must.record_r))
    chained = (component[ids.get_indexer(cannot.record_l)]
               == component[ids.get_indexer(cannot.record_r)])
    if not chained.any():
        return
    pair = cannot[chained].iloc[0]
    places = given.set_index(PAIR)
    key = (pair.record_l, pair.record_r)
    if key in places.index:  # the non-match is one of the files'
        row = places.loc[key]
        raise DecisionError(f"{row.file}: {row['where']}: decision: non-match, but match "
                            "decisions join these two records through a chain of pairs")
    group = component[ids.get_indexer([pair.record_l])[0]]
    in_group = np.isin(ids.get_indexer(given.record_l), np.flatnonzero(component == group))
    row = given[in_group & (given.decision == MATCH).to_numpy()].iloc[0]
    raise DecisionError(f"{row.file}: {row['where']}: decision: match, but it chains two "
                        "records a decision the spine holds calls a non-match")
