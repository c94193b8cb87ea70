"""Which identifiers each source's records carry, recorded at link time, and what that means
for linkage: completeness by source and the records that could not link at all.

``presence_patterns`` is run by ``link`` on the registered records (``linking_records``) and
its small result kept in the spine version's counts (``identifier_patterns``): per source, how
many records hold each combination of the model's columns (a token or a Bloom filter present,
never its value). The report reads completeness and unlinkables from these patterns and the
trained model alone, so it needs neither the records nor the bundles.
"""

import re

import duckdb

from linkage.match.explain import level_table, prior_weight
from linkage.match.model import BLOOM_SUFFIX
from linkage.sources.schema import RECORD_KEY

# counts' key for the patterns (old spines lack it)
PATTERNS_KEY = "identifier_patterns"


def presence_patterns(con: duckdb.DuckDBPyConnection, table: str,
                      columns: list[str]) -> list[dict]:
    """Per source and presence pattern of ``columns`` in ``table``: the records holding
    exactly those columns (non-null). One GROUP BY in DuckDB; the result has one row per
    pattern seen, sorted, as ``{"source", "present": [columns], "records"}``."""
    columns = sorted(columns)
    if not columns:
        rows = con.execute(f"SELECT source, count(*) FROM {table} GROUP BY source "
                           "ORDER BY source").fetchall()
        return [{"source": s, "present": [], "records": int(n)} for s, n in rows]
    # a bit per column, so that a pattern is one integer to group by
    mask = " + ".join(f"(CASE WHEN {c} IS NOT NULL THEN {1 << i} ELSE 0 END)::BIGINT"
                      for i, c in enumerate(columns))
    rows = con.execute(f"SELECT source, {mask} AS pattern, count(*) FROM {table} "
                       "GROUP BY ALL ORDER BY source, pattern").fetchall()
    return [{"source": source, "present": [c for i, c in enumerate(columns) if pattern >> i & 1],
             "records": int(n)} for source, pattern, n in rows]


def completeness(patterns: list[dict]) -> list[dict]:
    """Per source and column: the records and the share of them holding the column."""
    totals: dict[str, int] = {}
    held: dict[tuple[str, str], int] = {}
    columns: set[str] = set()
    for row in patterns:
        totals[row["source"]] = totals.get(row["source"], 0) + row["records"]
        for column in row["present"]:
            columns.add(column)
            held[row["source"], column] = held.get((row["source"], column), 0) + row["records"]
    return [{"source": source, "column": column, "records": totals[source],
             "holding": held.get((source, column), 0),
             "share": round(held.get((source, column), 0) / totals[source], 4)}
            for source in sorted(totals) for column in sorted(columns)]


def comparison_columns(model: dict) -> set[str]:
    """The record columns a saved model's comparisons read (``x_l`` and ``x_r`` in its
    levels' SQL)."""
    read: set[str] = set()
    for comparison in model.get("comparisons", []):
        for level in comparison["comparison_levels"]:
            read |= set(re.findall(r'"?([a-z][a-z0-9_]*)_[lr]"?\b', level["sql_condition"]))
    return read


def best_weights(patterns: list[dict], model: dict) -> list[float]:
    """For each pattern, the best match weight a record holding those columns could reach:
    the record compared with a perfect copy of itself, as Splink's unlinkables chart does.
    Each comparison's own SQL is run in DuckDB on one made-up record per pattern (a
    placeholder where the pattern holds a column or it is the record key, NULL where not),
    so a comparison the
    record cannot fill counts 0 and one it fills counts its strongest level it can reach
    (date of birth and sex agreeing needs the sex too). The weight is the prior plus those
    levels' weights; term-frequency adjustments are left out (they lower common values)."""
    from linkage.match.run import derived_columns  # run imports this module

    if not patterns:
        return []
    profiled = sorted({c for row in patterns for c in row["present"]})
    read = comparison_columns(model)
    derived_names = set(derived_columns(sorted(read | set(profiled))))
    # every record holds its key; any other column no pattern holds, no record holds
    base = sorted((read | set(profiled)) - derived_names - {"source"})
    always = set(RECORD_KEY)

    def value(column: str, held: bool) -> str:
        if not held:
            return "NULL" + ("::BIT" if column.endswith(BLOOM_SUFFIX) else "")
        if column.endswith(BLOOM_SUFFIX):
            return "'10110'::BIT"
        return "2024" if column == "period" else "'x'"

    rows = " UNION ALL ".join(
        f"SELECT {i} AS pattern, '{row['source']}' AS source, " + ", ".join(
            f"{value(c, c in row['present'] or c in always)} AS {c}" for c in base)
        for i, row in enumerate(patterns))
    derived = derived_columns(base)
    extra = "".join(f", {sql} AS {name}" for name, sql in derived.items())
    columns = ["source", *base, *derived]
    sides = ", ".join(f"l.{c} AS {c}_l, r.{c} AS {c}_r" for c in columns)
    levels = level_table(model)
    weight = {(r.comparison, r.gamma): (r.weight or 0.0) for r in levels.itertuples()}
    gammas = []
    for comparison in model["comparisons"]:
        values = levels[levels.comparison == comparison["output_column_name"]].gamma.tolist()
        whens = " ".join(
            f"WHEN {level['sql_condition']} THEN {gamma}"
            for level, gamma in zip(comparison["comparison_levels"], values, strict=True)
            if level["sql_condition"].strip().upper() != "ELSE")
        gammas.append(f"CASE {whens} ELSE 0 END")
    con = duckdb.connect()
    try:
        found = con.execute(
            f"WITH records AS (SELECT *{extra} FROM ({rows})), "
            f"pairs AS (SELECT l.pattern, {sides} FROM records l JOIN records r "
            f"USING (pattern)) SELECT pattern, {', '.join(gammas)} FROM pairs "
            "ORDER BY pattern").fetchall()
    finally:
        con.close()
    names = [c["output_column_name"] for c in model["comparisons"]]
    prior = prior_weight(model)
    return [prior + sum(weight[name, gamma] for name, gamma in zip(names, row[1:], strict=True))
            for row in found]


def unlinkables(patterns: list[dict], model: dict, threshold_weight: float) -> list[dict]:
    """Per source: the records whose best possible match weight (``best_weights``) stays
    below the threshold, so that not even a perfect copy of themselves would link."""
    weights = best_weights(patterns, model)
    totals: dict[str, int] = {}
    below: dict[str, int] = {}
    for row, weight in zip(patterns, weights, strict=True):
        totals[row["source"]] = totals.get(row["source"], 0) + row["records"]
        if weight < threshold_weight:
            below[row["source"]] = below.get(row["source"], 0) + row["records"]
    return [{"source": s, "records": totals[s], "unlinkable": below.get(s, 0),
             "share": round(below.get(s, 0) / totals[s], 4)} for s in sorted(totals)]
