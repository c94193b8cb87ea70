"""Blocking and training rules for the columns present: the schema's own where their columns
are there, then rules generated for what they leave out.

Every rule's pairs are counted by Splink before it is used, so a rule that would compare most
records with most others (a state, a sex) is dropped; and every token column that no rule in
use reads gets a rule of its own, so no single field (a date of birth) must be present for
pairs to be found.
"""

import logging

import duckdb
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.splink_dataframe import SplinkDataFrame

from linkage.match.model import (
    BLOOM_SUFFIX,
    ModelError,
    column_fields,
    compared_columns,
    comparison_specs,
    digest_column,
    match_settings,
    rule_columns,
    usable,
)

COUNT_SAMPLE_RECORDS = 200_000  # records each side of a counted join, at most
MAX_GENERATED = 12              # generated blocking rules, at most
MAX_PAIRED = 6                  # columns too common alone that are tried in pairs, at most
ALWAYS_KEPT = "l.prelink = r.prelink"  # one provider record: its pairs are its own few periods

log = logging.getLogger(__name__)


def equal(column: str) -> str:
    return f"l.{column} = r.{column}"


def pair_count(records: SplinkDataFrame, rule: str, size: int) -> int:
    """The pairs ``rule`` makes, counted by Splink (on a fixed sample of records at scale)."""
    share = min(1.0, COUNT_SAMPLE_RECORDS / max(size, 1))
    counted = count_comparisons_from_blocking_rules(
        records, blocking_rules=rule, link_type="dedupe_only",
        record_sample_proportion=share)
    return int(counted[0]["cumulative_comparison_count"])


def blockable(columns: set[str], kinds: dict[str, str]) -> list[str]:
    """Columns a generated rule may join on: exact tokens and name digests (never a salt)."""
    excluded = set(match_settings()["not_blocked_alone"])
    out = [c for c, kind in kinds.items() if kind == "token" and c in columns]
    out += [digest_column(c) for c, kind in kinds.items()
            if kind == "bloom" and c.endswith(BLOOM_SUFFIX) and c in columns]
    return sorted(set(out) - excluded)


def blocking_rules(records: SplinkDataFrame, columns: set[str], kinds: dict[str, str],
                   size: int) -> list[dict]:
    """The blocking rules for these records, each with the pairs it makes (``pairs``) and
    whether the schema gave it or it was generated (``origin``)."""
    budget = match_settings()["max_pairs_per_record"] * max(size, 1)
    chosen, covered = [], set()
    for rule in usable(match_settings()["blocking"], columns):
        pairs = None if rule == ALWAYS_KEPT else pair_count(records, rule, size)
        if pairs is None or pairs <= budget:
            chosen.append({"rule": rule, "pairs": pairs, "origin": "schema"})
            covered |= rule_columns(rule)
        else:
            log.info("blocking rule dropped, %s pairs: %s", pairs, rule)
    too_many = []
    for column in (c for c in blockable(columns, kinds) if c not in covered):
        pairs = pair_count(records, equal(column), size)
        if pairs <= budget:
            chosen.append({"rule": equal(column), "pairs": pairs, "origin": "generated"})
        else:
            too_many.append(column)
    too_many = too_many[:MAX_PAIRED]  # pairs of them are counted: keep that bounded
    for i, first in enumerate(too_many):  # each too common alone: try it with another
        for second in too_many[i + 1:]:
            rule = f"{equal(first)} AND {equal(second)}"
            pairs = pair_count(records, rule, size)
            if pairs <= budget:
                chosen.append({"rule": rule, "pairs": pairs, "origin": "generated"})
    generated = [r for r in chosen if r["origin"] == "generated"]
    if len(generated) > MAX_GENERATED:  # the fewest pairs first: the most selective
        keep = sorted(generated, key=lambda r: (r["pairs"], r["rule"]))[:MAX_GENERATED]
        chosen = [r for r in chosen if r["origin"] == "schema" or r in keep]
    return chosen


def distinct_share(con: duckdb.DuckDBPyConnection, table: str, columns: list[str]
                   ) -> dict[str, float]:
    """For each column, distinct values over records holding one: how nearly it is an id."""
    if not columns:
        return {}
    sql = ", ".join(f"count(DISTINCT {c}) / greatest(count({c}), 1)" for c in columns)
    row = con.execute(f"SELECT {sql} FROM {table}").fetchall()[0]
    return dict(zip(columns, (float(v) for v in row), strict=True))


def training_rules(con: duckdb.DuckDBPyConnection, table: str, records: SplinkDataFrame,
                   columns: set[str], kinds: dict[str, str], size: int,
                   groups: dict[str, str] | None = None) -> dict:
    """The prior's deterministic rules and the EM rules for these columns.

    The schema's rules are used where their columns are present. Then, for each comparison
    that no EM rule leaves free to estimate, a rule is generated on the most id-like column
    outside that comparison (with a second column if it alone makes too many pairs). A
    comparison nothing can train is refused: Splink's default m would decide links blindly.
    """
    settings = match_settings()["training"]
    candidates = blockable(columns, kinds)
    share = distinct_share(con, table, candidates)
    ranked = sorted(candidates, key=lambda c: (-share[c], c))
    budget = match_settings()["max_pairs_per_record"] * max(size, 1)
    prior = usable(settings["prior"], columns)
    if not prior:
        prior = [_rule_within_budget(records, ranked, set(), budget, size, pairs=True)]
        if prior == [None]:
            raise ModelError("no two identifier columns to estimate how often records match: "
                             "map at least two identifying fields")
    em = usable(settings["em"], columns)
    specs = comparison_specs(columns, kinds, groups=groups)
    for name, spec in specs.items():
        if "builtin" in spec:
            continue
        own = _spec_fields(spec, columns)
        if any(not (_fields_read(rule) & own) for rule in em):
            continue
        avoid = {c for c in ranked if column_fields(c) & own}
        rule = _rule_within_budget(records, ranked, avoid, budget, size)
        if rule is None:
            raise ModelError(f"comparison {name} cannot be trained: no other identifier "
                             "column to find likely matches by; map another identifying field")
        em.append(rule)
    return {"prior": prior, "em": em}


def _spec_fields(spec: dict, columns: set[str]) -> set[str]:
    """The identifier fields a comparison reads (of the columns present)."""
    return {field for column in compared_columns(spec) if column in columns
            for field in column_fields(column)}


def _fields_read(rule: str) -> set[str]:
    """The identifier fields a rule's columns are made from (salts included)."""
    return {f for column in rule_columns(rule) - {"prelink", "source", "provider"}
            for f in column_fields(column)}


def _rule_within_budget(records: SplinkDataFrame, ranked: list[str], avoid: set[str],
                        budget: float, size: int, pairs: bool = False) -> str | None:
    """A rule on the most id-like column(s) not in ``avoid`` that makes at most ``budget``
    pairs; ``pairs`` asks for two columns at once (rules for the prior must be near-certain)."""
    usable_columns = [c for c in ranked if c not in avoid]
    options = ([f"{equal(a)} AND {equal(b)}" for i, a in enumerate(usable_columns)
                for b in usable_columns[i + 1:]] if pairs else
               [equal(c) for c in usable_columns] +
               [f"{equal(a)} AND {equal(b)}" for i, a in enumerate(usable_columns)
                for b in usable_columns[i + 1:]])
    for rule in options[:20]:
        if pair_count(records, rule, size) <= budget:
            return rule
    return None
