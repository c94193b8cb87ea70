"""The linkage quality report: one self-contained HTML file (no script, no CDN) for a TRE's
governance board and its researchers.

The figures are gathered as plain data first (``report_data``), then rendered. No identifier
or token value is read: only the spine's keys, record attributes (source, LA, ethnicity, sex,
age band, quality flags), the trained model and the family tables. Counts from 1 to 5 are
shown as "c", and rates over fewer than 6 records are not shown.
"""

import json
import math
from html import escape
from pathlib import Path

import numpy as np
import pandas as pd

from linkage import __version__
from linkage.atomic import write_atomically
from linkage.config import load_config
from linkage.quality.charts import bar_chart, histogram
from linkage.release.ethnic_groups import EthnicGroups
from linkage.sources.schema import CHILD_SOURCES, LA_SOURCES, RECORD_KEY
from linkage.spine.store import connect, current_version, family_tables

# whose match rates the bias table shows: the LA returns and the adopted children
CARE_SOURCES = tuple(dict.fromkeys([*LA_SOURCES, *CHILD_SOURCES]))
DIMENSIONS = ["ethnicity", "sex", "age_band", "la", "moved_la"]
LINKAGE_UNIT_DIMENSIONS = ["la", "moved_la"]  # what the linkage unit holds without content
MIN_GROUP_FOR_GAP = 30   # groups smaller than this are not called out as a gap


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
        records = con.execute(
            f"SELECT r.person_key, {', '.join(f'r.{k}' for k in RECORD_KEY)}, p.flags "
            f"FROM person_record r LEFT JOIN record_profile p "
            f"USING (version, {', '.join(RECORD_KEY)}) "
            "WHERE r.version = ?", [version]).df()
        families = family_tables(con)
        changes = _changes(con, version)
    finally:
        con.close()
    counts, model = json.loads(meta[1]), json.loads(meta[2])
    records = _with_linkage(records)
    dimensions = LINKAGE_UNIT_DIMENSIONS
    if groups is not None:
        records = records.merge(groups, on=RECORD_KEY, how="left")
        dimensions = DIMENSIONS
    data = {
        "version": version, "created_at": meta[0], "toolkit_version": __version__,
        "records": len(records), "persons": int(records.person_key.nunique()),
        "sources": _by_source(records),
        "combinations": _combinations(records),
        "unlinked": _unlinked(records),
        "groups": {d: _match_rates(records, d) for d in dimensions},
        "groups_by_custodian": groups is not None,
        "weights": {"bins": counts.get("match_weights", []),
                    "threshold": counts.get("threshold_match_weight")},
        "model": _model_levels(model),
        "families": _families(families),
        "changes": changes,
    }
    data["gaps"] = {d: _gap(rows) for d, rows in data["groups"].items()}
    if truth is not None:
        data["accuracy"] = _accuracy(records, families, truth, key)
    return data


def _with_linkage(records: pd.DataFrame) -> pd.DataFrame:
    size = records.groupby("person_key").person_key.transform("size")
    sources = records.groupby("person_key").source.transform("nunique")
    las = records[records.source.isin(LA_SOURCES)].groupby("person_key").provider.nunique()
    return records.assign(
        linked=size > 1, cross_source=sources > 1,
        la=records.provider.where(records.source.isin(LA_SOURCES), "not an LA return"),
        moved_la=records.person_key.map(las).fillna(0).gt(1).map(
            {True: "looked after or in need in 2+ LAs", False: "one LA or none"}))


def _by_source(records: pd.DataFrame) -> list[dict]:
    rows = records.groupby("source").agg(records=("person_key", "size"),
                                         linked=("linked", "mean"),
                                         cross_source=("cross_source", "mean"))
    return [{"source": s, "records": int(r.records), "linked": round(r.linked, 4),
             "cross_source": round(r.cross_source, 4)} for s, r in rows.iterrows()]


def _combinations(records: pd.DataFrame) -> list[dict]:
    combos = records.groupby("person_key").source.agg(lambda s: " + ".join(sorted(set(s))))
    counts = combos.value_counts()
    return [{"sources": k, "persons": int(v)} for k, v in counts.items()]


def _unlinked(records: pd.DataFrame) -> list[dict]:
    alone = records[~records.linked]
    reason = alone["flags"].fillna("").str.split(";").str[0].replace("", "no problem recorded")
    counts = alone.assign(reason=reason).groupby(["source", "reason"]).size()
    return [{"source": s, "reason": r, "records": int(n)} for (s, r), n in counts.items()]


def _match_rates(records: pd.DataFrame, dimension: str) -> list[dict]:
    """Per group, in the group's natural order: children's social care records, and the
    share linked to a record of another source (mostly their pupil records: what education
    research depends on), with its 95% Wilson interval. Ethnicity is shown by its GSS
    harmonised group, never a code."""
    records = records[records.source.isin(LA_SOURCES if dimension == "la" else CARE_SOURCES)]
    values = records[dimension].fillna("unknown").astype(str).replace("", "unknown")
    order = None
    if dimension == "ethnicity":
        groups = EthnicGroups.load(detailed=False)
        values, order = groups.labels(records[dimension]), groups.order
    rows = records.assign(group=values.to_numpy()).groupby("group").agg(
        records=("person_key", "size"), linked=("cross_source", "sum"))
    out = []
    for group in _ordered(list(rows.index), dimension, order):
        n, linked = int(rows.records[group]), int(rows.linked[group])
        low, high = wilson_interval(linked, n)
        out.append({"group": group, "records": n, "rate": round(linked / n, 4),
                    "ci_low": round(low, 4), "ci_high": round(high, 4)})
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
    out = []
    for comparison in model.get("comparisons", []):
        for level in comparison["comparison_levels"]:
            m, u = level.get("m_probability"), level.get("u_probability")
            if m is None or u is None:
                continue
            out.append({"comparison": comparison["output_column_name"],
                        "level": level.get("label_for_charts", ""),
                        "m": round(m, 6), "u": round(u, 8),
                        "weight": round(math.log2(m / u), 2) if m > 0 and u > 0 else None})
    return out


def _changes(con, version: int) -> dict:
    """What this version changed in the persons of the last: person keys merged, split,
    retired or new (key_change), with the records they hold; and both versions' sizes."""
    kinds = con.execute("SELECT change, count(*), coalesce(sum(records), 0) FROM key_change "
                        "WHERE version = ? GROUP BY change ORDER BY change", [version]).fetchall()
    sizes = dict(((v, (records, persons)) for v, records, persons in con.execute(
        "SELECT version, count(*), count(DISTINCT person_key) FROM person_record "
        "WHERE version IN (?, ?) GROUP BY version", [version - 1, version]).fetchall()))
    before = sizes.get(version - 1)
    return {"previous_version": version - 1 if before else None,
            "records_before": before[0] if before else None,
            "persons_before": before[1] if before else None,
            "kinds": [{"change": c, "keys": int(n), "records": int(r)} for c, n, r in kinds]}


def _families(families: dict) -> dict:
    def confidence_bins(frame: pd.DataFrame) -> list[list]:
        if frame.empty:
            return []
        bins = np.floor((frame.confidence.astype(float) * 100).clip(upper=99.99))
        return [[float(b), int(n)] for b, n in bins.value_counts().sort_index().items()]

    return {
        "adopter_households": int(families["adopter_household"].household_key.nunique()),
        "child_adopter_links": len(families["child_adopter_link"]),
        "sibling_groups": int(families["sibling_group"].sibling_group_key.nunique()),
        "children_in_sibling_groups": len(families["sibling_group"]),
        "mother_child_links": len(families["mother_child_link"]),
        "confidence": {name: confidence_bins(families[name]) for name in
                       ("child_adopter_link", "sibling_group", "mother_child_link")},
    }


def _accuracy(records: pd.DataFrame, families: dict, truth: Path, key: bytes | None) -> dict:
    from linkage.quality.evaluate import evaluate, load_truth
    from linkage.quality.families import evaluate_families

    truth_records, persons = load_truth(truth, key)
    linked = records[["person_key", *RECORD_KEY]]
    scores = evaluate(linked, truth_records, persons)
    scores.update(evaluate_families(families, linked, truth_records, persons, truth))
    return scores


# rendering ------------------------------------------------------------------------------------

STYLE = """
body{font:15px/1.45 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:0 20px;
color:#1b1b1b}h1{margin-top:24px}section{border-top:1px solid #ccc;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:right}td:first-child,th:first-child{text-align:left}.bar{fill:#1d70b8}
.threshold{stroke:#d4351c;stroke-width:2}.axis{stroke:#555}svg text{font-size:12px}
.callout{background:#fff7e6;border-left:4px solid #f47738;padding:6px 10px}
nav a{margin-right:12px}
"""
SECTIONS = [("summary", "Summary"), ("sources", "Match rates by source"),
            ("weights", "Match weights and threshold"), ("model", "The model: m and u"),
            ("unlinked", "Records left unlinked"), ("combinations", "Persons by sources"),
            ("bias", "Match rates by group"), ("families", "Family keys"),
            ("changes", "Changes since the last version"),
            ("accuracy", "Accuracy against truth")]


def count(n: int, rules: dict) -> str:
    """A count as shown: 1 to 5 suppressed."""
    return rules["suppressed"] if 0 < n < rules["min_count"] else f"{n:,}"


def rate(value: float, n: int, rules: dict) -> str:
    return rules["hidden_percentage"] if n < rules["min_count"] else f"{100 * value:.1f}%"


def interval(group: dict, rules: dict) -> str:
    """A group's 95% interval as shown, hidden where its rate is."""
    if group["records"] < rules["min_count"]:
        return rules["hidden_percentage"]
    return f"{100 * group['ci_low']:.1f}% to {100 * group['ci_high']:.1f}%"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render(data: dict) -> str:
    """The report as one HTML page."""
    rules = load_config("disclosure.yaml")
    parts = {name: renderer(data, rules) for name, renderer in RENDERERS.items()}
    if "accuracy" not in data:
        parts["accuracy"] = "<p>No truth was given (--truth): accuracy is not measured.</p>"
    nav = "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
    body = "".join(f'<section id="{key}"><h2>{escape(title)}</h2>{parts[key]}</section>'
                   for key, title in SECTIONS)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Linkage '
            f'quality report, spine version {data["version"]}</title><style>{STYLE}</style>'
            f'</head><body><h1>Linkage quality report</h1><nav>{nav}</nav>{body}</body></html>\n')


def _render_summary(data, rules) -> str:
    return _table(["measure", "value"], [
        ["spine version", data["version"]], ["linked at", data["created_at"]],
        ["records", f"{data['records']:,}"], ["persons", f"{data['persons']:,}"],
        ["toolkit version", data["toolkit_version"]]]) + (
        "<p>Counts from 1 to 5 show as c; rates over fewer than 6 records as x.</p>")


def _render_sources(data, rules) -> str:
    rows = [[s["source"], count(s["records"], rules), rate(s["linked"], s["records"], rules),
             rate(s["cross_source"], s["records"], rules)] for s in data["sources"]]
    chart = bar_chart("Records linked to another source (%)",
                      [(s["source"], round(100 * s["cross_source"], 1))
                       for s in data["sources"] if s["records"] >= rules["min_count"]], "%")
    return _table(["source", "records", "linked to any record", "linked to another source"],
                  rows) + chart


def _render_weights(data, rules) -> str:
    bins = [(b, n) for b, n in data["weights"]["bins"]]
    bins = [(b, n if n >= rules["min_count"] else 0) for b, n in bins]
    threshold = data["weights"]["threshold"]
    text = ("<p>Every candidate pair kept (match probability 0.1 or more), by its match "
            "weight: log2 of how much likelier the pair's agreements are for one person "
            "than for two. Pairs right of the "
            f"threshold ({threshold:g}) join persons.</p>" if threshold is not None else
            "<p>This spine version did not record its match weights.</p>")
    return text + histogram("Candidate pairs by match weight", bins, threshold, "match weight")


def _render_model(data, rules) -> str:
    rows = [[m["comparison"], m["level"], f"{m['m']:.4f}", f"{m['u']:.6f}",
             "" if m["weight"] is None else f"{m['weight']:+.2f}"] for m in data["model"]]
    chart = bar_chart("Match weight of agreement, per comparison (bits)",
                      [(f"{m['comparison']}: {m['level'][:36]}", max(m["weight"] or 0, 0))
                       for m in data["model"] if (m["weight"] or 0) > 0])
    return ("<p>m: how often true matches fall in a level; u: how often non-matches do. "
            "Their ratio is the evidence the level carries.</p>"
            + _table(["comparison", "level", "m", "u", "weight (bits)"], rows) + chart)


def _render_unlinked(data, rules) -> str:
    rows = [[u["source"], u["reason"], count(u["records"], rules)] for u in data["unlinked"]]
    return ("<p>Records in a person of their own, by the first quality flag their provider's "
            "file raised (docs/providers.md explains each flag).</p>"
            + _table(["source", "reason", "records"], rows))


def _render_combinations(data, rules) -> str:
    rows = [[c["sources"], count(c["persons"], rules)] for c in data["combinations"]]
    return _table(["sources", "persons"], rows)


def _render_bias(data, rules) -> str:
    out = ["<p>The share of each group's children's social care records (903, CIN, ASG "
           "children) linked to a record of another source, mostly a pupil record. Linkage "
           "that misses some groups more than others biases the disparities researchers "
           "measure. A gap is called out between the lowest and highest rates of groups of "
           "30 records or more only when their 95% intervals do not overlap.</p>"]
    if not data.get("groups_by_custodian"):
        out.append("<p>Breakdowns by ethnicity, sex and age band need the records' content, "
                   "which only the data custodian can open: run <code>linkage report "
                   "--custodian-key</code> with the bundles.</p>")
    for dimension in data["groups"]:
        gap = data["gaps"][dimension]
        if gap:
            out.append(f'<p class="callout">{escape(dimension)}: the largest gap is '
                       f'{gap["points"]} percentage points, between {escape(gap["highest"])} '
                       f'and {escape(gap["lowest"])}.</p>')
        rows = [[g["group"], count(g["records"], rules), rate(g["rate"], g["records"], rules),
                 interval(g, rules)] for g in data["groups"][dimension]]
        out.append(f"<h3>{escape(dimension)}</h3>"
                   + _table([dimension, "records", "linked to another source",
                             "95% interval"], rows))
    return "".join(out)


def _render_families(data, rules) -> str:
    families = data["families"]
    rows = [[name.replace("_", " "), count(families[name], rules)] for name in
            ("adopter_households", "child_adopter_links", "sibling_groups",
             "children_in_sibling_groups", "mother_child_links")]
    charts = "".join(histogram(f"{name.replace('_', ' ')}: confidence (%)",
                               [(b, n if n >= rules["min_count"] else 0) for b, n in bins],
                               None, "confidence %")
                     for name, bins in families["confidence"].items() if bins)
    return _table(["family key", "count"], rows) + charts


def _render_accuracy(data, rules) -> str:
    if "accuracy" not in data:
        return ""
    a = data["accuracy"]
    rows = [["pairwise precision", f"{a['pairwise']['precision']:.4f}"],
            ["pairwise recall", f"{a['pairwise']['recall']:.4f}"],
            ["pairwise F1", f"{a['pairwise']['f1']:.4f}"],
            ["persons split", count(a["persons_split"], rules)],
            ["persons merged", count(a["persons_merged"], rules)],
            ["twin pairs merged", count(a["twins_merged"], rules)],
            ["child-adopter precision / recall",
             f"{a['child_adopter']['precision']:.3f} / {a['child_adopter']['recall']:.3f}"],
            ["sibling pairs precision / recall",
             f"{a['siblings']['pair_precision']:.3f} / {a['siblings']['pair_recall']:.3f}"],
            ["mother-child precision / recall",
             f"{a['mother_child']['precision']:.3f} / {a['mother_child']['recall']:.3f}"]]
    return ("<p>Against the synthetic world's truth.</p>" + _table(["measure", "value"], rows)
            + _render_accuracy_by_group(a.get("recall_by_group", {}), rules))


ACCURACY_GROUPS = {"ethnic_group": "ethnic group", "age_band": "age band", "sex": "sex",
                   "moved_la": "moved LA"}


def _render_accuracy_by_group(by_group: dict, rules: dict) -> str:
    """Pairwise recall and precision per group of the true person: a missed link that
    falls on one group more than another is what biases group comparisons."""
    out = ["<p>Pairwise recall and precision by the true person's group. Recall is of the "
           "pairs of that group's records; a predicted pair counts for the group of the "
           "person its cluster mostly holds.</p>"]
    for name, title in ACCURACY_GROUPS.items():
        groups = by_group.get(name)
        if not groups:
            continue
        order = _ordered(list(groups), "age_band" if name == "age_band" else name,
                         EthnicGroups.load(detailed=False).order
                         if name == "ethnic_group" else None)
        rows = [[group, count(groups[group]["true_pairs"], rules),
                 _fraction(groups[group]["recall"]), _fraction(groups[group]["precision"])]
                for group in order]
        out.append(f"<h3>{escape(title)}</h3>"
                   + _table([title, "true pairs", "recall", "precision"], rows))
    return "".join(out)


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _render_changes(data, rules) -> str:
    changes = data["changes"]
    if changes["previous_version"] is None:
        return ("<p>This is the spine's first version: there is no earlier version to "
                "compare with.</p>")
    sizes = _table(["version", "records", "persons"], [
        [changes["previous_version"], f"{changes['records_before']:,}",
         f"{changes['persons_before']:,}"],
        [data["version"], f"{data['records']:,}", f"{data['persons']:,}"]])
    if not changes["kinds"]:
        return sizes + ("<p>Every person key of the last version was kept with the same "
                        "records: no merge, split or retirement.</p>")
    rows = [[c["change"], count(c["keys"], rules), count(c["records"], rules)]
            for c in changes["kinds"]]
    return (sizes + "<p>Person keys this version changed (the spine's <code>key_change"
            "</code> table: a merge joins persons, a split divides one, a retirement ends a "
            "person whose records were withdrawn).</p>"
            + _table(["change", "person keys", "records"], rows))


RENDERERS = {"summary": _render_summary, "changes": _render_changes, "sources": _render_sources,
             "weights": _render_weights, "model": _render_model,
             "unlinked": _render_unlinked, "combinations": _render_combinations,
             "bias": _render_bias, "families": _render_families,
             "accuracy": _render_accuracy}


def write_report(spine: Path, out: Path, truth: Path | None = None,
                 groups: pd.DataFrame | None = None, key: bytes | None = None) -> dict:
    """Gather, render and write the report (atomically); returns its data."""
    data = report_data(spine, truth, groups, key)
    write_atomically(out, render(data))
    return data
