"""The linkage quality report: one self-contained HTML file (no script, no CDN) for a TRE's
governance board and its researchers.

The figures are gathered as plain data first (``report_data``), then rendered
(``linkage.quality.page``). Every figure is an aggregate computed by DuckDB on the spine's own
connection, so only small frames reach Python whatever the spine's size. No identifier or
token value is read: only the spine's keys, record attributes (source, LA, quality flags), the
trained model, the scored pairs' weights and the family tables; the custodian's breakdowns by
ethnicity, sex and age band join its per-record groups in DuckDB too.
"""

import json
import math
from pathlib import Path

import duckdb
import pandas as pd

from linkage import __version__
from linkage.atomic import write_atomically
from linkage.match.explain import level_table, probability
from linkage.quality import profile
from linkage.release.ethnic_groups import EthnicGroups
from linkage.sources.schema import CHILD_SOURCES, LA_SOURCES, RECORD_KEY
from linkage.spine.store import connect, current_version, family_tables, scored_pairs_kept

# whose match rates the bias table shows: the LA returns and the adopted children
CARE_SOURCES = tuple(dict.fromkeys([*LA_SOURCES, *CHILD_SOURCES]))
DIMENSIONS = ["ethnicity", "sex", "age_band", "la", "moved_la"]
LINKAGE_UNIT_DIMENSIONS = ["la", "moved_la"]  # what the linkage unit holds without content
MIN_GROUP_FOR_GAP = 30   # groups smaller than this are not called out as a gap
CURVE_STEP = 0.5         # the threshold curves' step, in match weight
NOT_LA = "not an LA return"
MOVED, STAYED = "looked after or in need in 2+ LAs", "one LA or none"


def _sql_list(values) -> str:
    return "(" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + ")"


def report_data(spine: Path, truth: Path | None = None, groups: pd.DataFrame | None = None,
                key: bytes | None = None) -> dict:
    """Every figure the report shows, as plain data.

    The breakdowns by ethnicity, sex and age band need ``groups`` (per record, from the
    bundles' content parts: only the data custodian can open them); without them the report
    breaks down by what the linkage unit itself holds (LA and movers). ``key`` is the
    synthetic world's linkage key, for accuracy against its ``truth``."""
    con = connect(spine, read_only=True)
    try:
        version = current_version(con)
        if version == 0:
            raise ValueError(f"{spine}: has no linked version yet")
        meta = con.execute("SELECT created_at, counts, model FROM spine_version "
                           "WHERE version = ?", [version]).fetchall()[0]
        counts, model = json.loads(meta[1]), json.loads(meta[2])
        sources = _stage_records(con, version, groups)
        dimensions = DIMENSIONS if groups is not None else LINKAGE_UNIT_DIMENSIONS
        records, persons = con.execute(
            "SELECT sum(records), count(*) FROM report_persons").fetchall()[0]
        threshold = counts.get("threshold_match_weight")
        data = {
            "version": version, "created_at": meta[0], "toolkit_version": __version__,
            "records": int(records), "persons": int(persons),
            "sources": _by_source(con),
            "combinations": _combinations(con, sources),
            "unlinked": _unlinked(con, version),
            "groups": {d: _match_rates(con, d) for d in dimensions},
            "groups_by_custodian": groups is not None,
            "weights": {"bins": counts.get("match_weights", []), "threshold": threshold},
            "model": _model_levels(model),
            "identifiers": _identifiers(counts, model),
            "families": _families(con, version),
            "changes": _changes(con, version),
        }
        truth_frames = None
        if truth is not None:
            from linkage.quality.evaluate import load_truth

            truth_frames = load_truth(truth, key)
        data["curves"] = _curves(con, version, counts, threshold,
                                 truth_frames[0] if truth_frames else None)
        if truth_frames is not None:
            linked = con.execute(
                f"SELECT person_key, {', '.join(RECORD_KEY)} FROM person_record "
                "WHERE version = ?", [version]).df()
            data["accuracy"] = _accuracy(linked, family_tables(con, version), truth,
                                         truth_frames)
    finally:
        con.close()
    data["gaps"] = {d: _gap(rows) for d, rows in data["groups"].items()}
    return data


def _stage_records(con: duckdb.DuckDBPyConnection, version: int,
                   groups: pd.DataFrame | None) -> list[str]:
    """Two small temporary tables on the spine's connection, from one pass over the version's
    records each: ``report_persons`` (per person: its records, its sources as a bit mask,
    and whether LA returns of two LAs hold it) and ``report_cube`` (records counted by source,
    LA, moved or not, linked or not, linked to another source or not, and with ``groups`` by
    ethnicity, sex and age band). Every later figure sums one of them. Returns the sources,
    in the order of their bits."""
    v = int(version)
    sources = [row[0] for row in con.execute(
        f"SELECT DISTINCT source FROM person_record WHERE version = {v} ORDER BY 1").fetchall()]
    bit = " ".join(f"WHEN '{name}' THEN {1 << i}" for i, name in enumerate(sources))
    la = _sql_list(LA_SOURCES)
    con.execute(f"""CREATE OR REPLACE TEMP TABLE report_persons AS
        SELECT person_key, count(*) AS records,
               bit_or(CASE source {bit} END) AS sources,
               -- two LAs' returns: a child who moved (min and max differ; no count DISTINCT)
               coalesce(min(CASE WHEN source IN {la} THEN provider END)
                        <> max(CASE WHEN source IN {la} THEN provider END), false) AS moved
        FROM person_record WHERE version = {v} GROUP BY person_key""")
    group_columns, join = "", ""
    if groups is not None:
        con.register("custodian_groups", groups[[*RECORD_KEY, "ethnicity", "sex", "age_band"]]
                     .astype({"period": "int64", "provider": str, "record_id": str}))
        group_columns = ", g.ethnicity, g.sex, g.age_band"
        join = ("LEFT JOIN custodian_groups g ON g.source = r.source AND g.provider = "
                "r.provider AND g.period = r.period AND g.record_id = r.record_id")
    con.execute(f"""CREATE OR REPLACE TEMP TABLE report_cube AS
        SELECT r.source,
               CASE WHEN r.source IN {la} THEN r.provider ELSE '{NOT_LA}' END AS la,
               CASE WHEN p.moved THEN '{MOVED}' ELSE '{STAYED}' END AS moved_la,
               p.records > 1 AS linked, bit_count(p.sources) > 1 AS cross_source
               {group_columns}, count(*) AS n
        FROM person_record r JOIN report_persons p USING (person_key) {join}
        WHERE r.version = {v} GROUP BY ALL""")
    if groups is not None:
        con.unregister("custodian_groups")
    return sources


def _by_source(con: duckdb.DuckDBPyConnection) -> list[dict]:
    rows = con.execute("""SELECT source, sum(n), sum(n * linked::INT),
               sum(n * cross_source::INT)
        FROM report_cube GROUP BY source ORDER BY source""").fetchall()
    out = []
    for source, n, linked, cross in rows:
        n, linked, cross = int(n), int(linked), int(cross)
        low, high = wilson_interval(cross, n)
        out.append({"source": source, "records": n, "linked": round(linked / n, 4),
                    "cross_source": round(cross / n, 4), "cross_source_records": cross,
                    "ci_low": round(low, 4), "ci_high": round(high, 4)})
    return out


def _combinations(con: duckdb.DuckDBPyConnection, sources: list[str]) -> list[dict]:
    """Persons by the combination of their sources (counted by bit mask in DuckDB, then the
    few masks named)."""
    rows = con.execute("SELECT sources, count(*) FROM report_persons GROUP BY 1").fetchall()
    named = [(" + ".join(s for i, s in enumerate(sources) if mask >> i & 1), int(n))
             for mask, n in rows]
    return [{"sources": c, "persons": n} for c, n in sorted(named, key=lambda r: (-r[1], r[0]))]


def _unlinked(con: duckdb.DuckDBPyConnection, version: int) -> list[dict]:
    """Records alone in their person, by source and the first quality flag of their file."""
    v = int(version)
    # only flagged records can give a reason: the join probes just their few rows
    rows = con.execute(f"""
        SELECT r.source, coalesce(nullif(split_part(f.flags, ';', 1), ''),
                                  'no problem recorded') AS reason, count(*)
        FROM person_record r
             JOIN (SELECT person_key FROM report_persons WHERE records = 1) USING (person_key)
             LEFT JOIN (SELECT * FROM record_profile WHERE version = {v} AND flags <> '') f
             ON f.source = r.source AND f.provider = r.provider AND f.period = r.period
             AND f.record_id = r.record_id
        WHERE r.version = {v} GROUP BY ALL ORDER BY 1, 2""").fetchall()
    return [{"source": s, "reason": reason, "records": int(n)} for s, reason, n in rows]


def _match_rates(con: duckdb.DuckDBPyConnection, dimension: str,
                 table: str = "report_cube") -> list[dict]:
    """Per group, in the group's natural order: children's social care records, and the
    share linked to a record of another source (mostly their pupil records: what education
    research depends on), with its 95% Wilson interval. Ethnicity is shown by its GSS
    harmonised group, never a code: codes are counted in DuckDB, then their few rows given
    their labels and summed. ``table`` counts records in its column ``n``."""
    sources = _sql_list(LA_SOURCES if dimension == "la" else CARE_SOURCES)
    counts = con.execute(f"""
        SELECT coalesce(nullif(CAST({dimension} AS VARCHAR), ''), 'unknown') AS "group",
               sum(n) AS records, sum(n * cross_source::INT) AS linked
        FROM {table} WHERE source IN {sources} GROUP BY 1""").df()
    order = None
    if dimension == "ethnicity":
        ethnic = EthnicGroups.load(detailed=False)
        codes = counts["group"].where(counts["group"] != "unknown")
        counts = (counts.assign(group=ethnic.labels(codes).to_numpy())
                  .groupby("group", as_index=False)[["records", "linked"]].sum())
        order = ethnic.order
    rows = counts.set_index("group")
    out = []
    for group in _ordered(list(rows.index), dimension, order):
        n, linked = int(rows.records[group]), int(rows.linked[group])
        low, high = wilson_interval(linked, n)
        out.append({"group": group, "records": n, "linked": linked,
                    "rate": round(linked / n, 4), "ci_low": round(low, 4),
                    "ci_high": round(high, 4)})
    return out


def _ordered(groups: list[str], dimension: str, order: list[str] | None) -> list[str]:
    """Groups in reading order: a configured order (ethnic groups), age bands by their
    first age (5-9 before 10-15), anything else as text."""
    if order is not None:
        return [g for g in order if g in groups] + sorted(set(groups) - set(order))
    if dimension == "age_band":
        def first_age(band: str) -> tuple[float, str]:
            if band.startswith("under"):
                return (-1.0, band)
            digits = band.split("-")[0].rstrip("+")
            return (float(digits) if digits.isdigit() else math.inf, band)
        return sorted(groups, key=first_age)
    return sorted(groups)


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default): sound for small groups
    and for rates near 0 or 1, where the normal approximation is not."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _gap(rows: list[dict]) -> dict | None:
    """The lowest and highest rates among groups of at least MIN_GROUP_FOR_GAP records,
    called out only when their 95% intervals do not overlap (else it may be chance)."""
    big = [r for r in rows if r["records"] >= MIN_GROUP_FOR_GAP]
    if len(big) < 2:
        return None
    low, high = min(big, key=lambda r: r["rate"]), max(big, key=lambda r: r["rate"])
    if low["ci_high"] >= high["ci_low"]:
        return None
    return {"lowest": low["group"], "highest": high["group"],
            "points": float(round(100 * (high["rate"] - low["rate"]), 1))}


def _model_levels(model: dict) -> list[dict]:
    """Every level: the comparison, its level (label and kind: missing, the null level whose
    weight is 0; other, the else level; or agreement), m, u and the weight in bits."""
    out = []
    for row in level_table(model).itertuples():
        if row.gamma == -1:
            out.append({"comparison": row.comparison, "level": "either record lacks it",
                        "gamma": -1, "kind": "missing", "m": None, "u": None, "weight": 0.0})
            continue
        if row.m is None or row.u is None or pd.isna(row.m) or pd.isna(row.u):
            continue
        kind = "other" if row.gamma == 0 else "agreement"
        out.append({"comparison": row.comparison, "level": row.label, "gamma": int(row.gamma),
                    # six significant figures: a strong level's u can be 1e-8
                    "kind": kind, "m": float(f"{row.m:.6g}"), "u": float(f"{row.u:.6g}"),
                    "weight": (round(math.log2(row.m / row.u), 2)
                               if row.m > 0 and row.u > 0 else None)})
    return out


def _identifiers(counts: dict, model: dict) -> dict:
    """Completeness of each model column by source, and the unlinkable records, from the
    presence patterns ``link`` recorded (older spines did not: ``recorded`` is False)."""
    patterns = counts.get(profile.PATTERNS_KEY)
    threshold = counts.get("threshold_match_weight")
    if patterns is None or threshold is None:
        return {"recorded": False}
    return {"recorded": True, "completeness": profile.completeness(patterns),
            "unlinkable": profile.unlinkables(patterns, model, threshold)}


def _curves(con: duckdb.DuckDBPyConnection, version: int, counts: dict,
            threshold: float | None, truth_records: pd.DataFrame | None) -> dict:
    """Expected precision and recall of the pairs at or above each threshold (in match
    weight), and with truth the measured ones. From the spine's scored pairs when it keeps
    them (exact: each pair's own probability, in steps of CURVE_STEP from the threshold);
    else from the whole-weight bins of counts, each bin's pairs taken at its middle weight
    (an approximation), and no measured curve."""
    if threshold is None:
        return {"source": None, "rows": []}
    if scored_pairs_kept(con) and con.execute(
            "SELECT count(*) = 0 OR min(version) = ? FROM scored_pair", [version]
            ).fetchall()[0][0]:
        truth_sql, true_total = _truth_pairs(con, version, truth_records)
        same = "tl.person_id = tr.person_id"
        measured = f", sum(coalesce({same}, false)::INT) AS true_pairs" if truth_sql else ""
        # steps from the configured threshold, so that it is one of the curves' points
        at = float(threshold)
        bins = con.execute(f"""
            SELECT round(floor((s.match_weight - {at}) / {CURVE_STEP}) * {CURVE_STEP} + {at}, 6)
                   AS threshold,
                   count(*) AS pairs,
                   -- summed as exact decimals: a float sum's order (threads) changes its bits
                   CAST(sum(CAST(s.match_probability AS DECIMAL(38, 15))) AS DOUBLE) AS expected
                   {measured}
            FROM scored_pair s {truth_sql}
            GROUP BY 1 ORDER BY 1""").df()
        source = "scored_pair"
    else:
        bins = pd.DataFrame(counts.get("match_weights", []), columns=["threshold", "pairs"])
        bins["threshold"] = bins.threshold.astype(float)
        bins["expected"] = bins.pairs * [probability(b + 0.5) for b in bins.threshold]
        source, true_total = "match_weights", None
    if bins.empty:
        return {"source": source, "rows": []}
    # pairs at or above each bin's start: sums from the top
    above = bins.iloc[::-1].cumsum().iloc[::-1]
    rows = pd.DataFrame({
        "threshold": bins.threshold.astype(float),
        "pairs": above.pairs.astype(int),
        "expected_precision": (above.expected / above.pairs).round(6),
        "expected_recall": (above.expected / bins.expected.sum()).round(6)})
    if true_total is not None:
        rows["precision"] = (above.true_pairs / above.pairs).round(6)
        rows["recall"] = (above.true_pairs / true_total).round(6) if true_total else 1.0
    return {"source": source, "threshold": threshold, "measured": true_total is not None,
            "true_pairs": true_total, "rows": rows.to_dict("records"),
            "at_threshold": _at_threshold(rows, threshold)}


def _at_threshold(rows: pd.DataFrame, threshold: float) -> dict | None:
    """The curves' values at the configured threshold (from scored pairs, one of the
    steps), or at the whole-weight bin just below it."""
    below = rows[rows.threshold <= threshold]
    return below.iloc[-1].to_dict() if not below.empty else None


def _truth_pairs(con: duckdb.DuckDBPyConnection, version: int,
                 truth_records: pd.DataFrame | None) -> tuple[str, int | None]:
    """With truth: a join giving each scored pair its two records' true persons (``tl`` and
    ``tr``), and the number of true pairs among the version's records (the recall's
    denominator, pairs never scored included)."""
    if truth_records is None:
        return "", None
    con.register("truth_input", truth_records[[*RECORD_KEY, "person_id"]].astype(
        {"period": "int64", "record_id": str, "provider": str, "person_id": str}))
    con.execute(f"""CREATE OR REPLACE TEMP TABLE report_truth AS
        SELECT r.record_number, t.person_id FROM person_record r JOIN truth_input t
        ON t.source = r.source AND t.provider = r.provider AND t.period = r.period
           AND t.record_id = r.record_id
        WHERE r.version = {int(version)} AND r.record_number IS NOT NULL""")
    con.unregister("truth_input")
    total = con.execute("SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM (SELECT count(*) AS n "
                        "FROM report_truth GROUP BY person_id)").fetchall()[0][0]
    join = ("LEFT JOIN report_truth tl ON tl.record_number = s.record_l "
            "LEFT JOIN report_truth tr ON tr.record_number = s.record_r")
    return join, int(total)


def _changes(con: duckdb.DuckDBPyConnection, version: int) -> dict:
    """What this version changed in the persons of the last: person keys merged, split,
    retired or new (key_change), with the records they hold; and the last version's size
    (this version's is the report's own)."""
    kinds = con.execute("SELECT change, count(*), coalesce(sum(records), 0) FROM key_change "
                        "WHERE version = ? GROUP BY change ORDER BY change", [version]).fetchall()
    before = None
    if version > 1:
        before = con.execute("SELECT count(*), count(DISTINCT person_key) FROM person_record "
                             "WHERE version = ?", [version - 1]).fetchall()[0]
        before = before if before[0] else None
    return {"previous_version": version - 1 if before else None,
            "records_before": before[0] if before else None,
            "persons_before": before[1] if before else None,
            "kinds": [{"change": c, "keys": int(n), "records": int(r)} for c, n, r in kinds]}


def _families(con: duckdb.DuckDBPyConnection, version: int) -> dict:
    """Counts of the family keys and their confidence by whole percent, in DuckDB."""
    v = int(version)

    def one(sql: str) -> int:
        return int(con.execute(sql).fetchall()[0][0])

    def confidence_bins(table: str) -> list[list]:
        rows = con.execute(f"SELECT floor(least(confidence * 100, 99.99)) AS b, count(*) "
                           f"FROM {table} WHERE version = {v} GROUP BY b ORDER BY b").fetchall()
        return [[float(b), int(n)] for b, n in rows]

    return {
        "adopter_households": one("SELECT count(DISTINCT household_key) FROM "
                                  f"adopter_household WHERE version = {v}"),
        "child_adopter_links": one(f"SELECT count(*) FROM child_adopter_link WHERE version = {v}"),
        "sibling_groups": one("SELECT count(DISTINCT sibling_group_key) FROM sibling_group "
                              f"WHERE version = {v}"),
        "children_in_sibling_groups": one(f"SELECT count(*) FROM sibling_group "
                                          f"WHERE version = {v}"),
        "mother_child_links": one(f"SELECT count(*) FROM mother_child_link WHERE version = {v}"),
        "confidence": {name: confidence_bins(name) for name in
                       ("child_adopter_link", "sibling_group", "mother_child_link")},
    }


def _accuracy(linked: pd.DataFrame, families: dict, truth: Path,
              truth_frames: tuple[pd.DataFrame, pd.DataFrame]) -> dict:
    """Scores against a synthetic world's truth (records by person key: a synthetic world's
    evaluation, not the report's figures at scale)."""
    from linkage.quality.evaluate import evaluate
    from linkage.quality.families import evaluate_families

    truth_records, persons = truth_frames
    scores = evaluate(linked, truth_records, persons)
    scores.update(evaluate_families(families, linked, truth_records, persons, truth))
    return scores


def write_report(spine: Path, out: Path, truth: Path | None = None,
                 groups: pd.DataFrame | None = None, key: bytes | None = None) -> dict:
    """Gather, render and write the report (atomically); returns its data."""
    from linkage.quality.page import render  # the page reads this module's ordering

    data = report_data(spine, truth, groups, key)
    write_atomically(out, render(data))
    return data
