"""The quality report's page: the figures of ``report_data`` as sections of blocks
(paragraphs, tables, charts), laid out by the Jinja2 template shipped in the package
(``templates/report.html.j2``).

Disclosure control is applied here, where counts become text: counts from 1 to 5 show as "c"
and rates over fewer than 6 records as "x" (configs/disclosure.yaml); a chart draws a
suppressed count as an empty bar labelled "c".
"""

import math

import jinja2
import pandas as pd

from linkage.config import load_config
from linkage.quality import charts
from linkage.quality.report import _ordered
from linkage.release.ethnic_groups import EthnicGroups

SECTIONS = [("summary", "Summary"), ("sources", "Match rates by source"),
            ("identifiers", "Identifiers by source, and records that cannot link"),
            ("weights", "Match weights and threshold"),
            ("threshold", "The threshold: precision against recall"),
            ("model", "The model: m, u and what each level means"),
            ("unlinked", "Records left unlinked"), ("combinations", "Persons by sources"),
            ("bias", "Match rates by group"), ("families", "Family keys"),
            ("changes", "Changes since the last version"),
            ("accuracy", "Accuracy against truth")]
ACCURACY_GROUPS = {"ethnic_group": "ethnic group", "age_band": "age band", "sex": "sex",
                   "moved_la": "moved LA"}
DIMENSION_TITLES = {"ethnicity": "ethnic group", "sex": "sex", "age_band": "age band",
                    "la": "LA", "moved_la": "moved LA"}


def _environment() -> jinja2.Environment:
    # the template travels inside the package, so an installed wheel finds it too
    return jinja2.Environment(loader=jinja2.PackageLoader("linkage.quality", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True)


def render(data: dict) -> str:
    """The report as one HTML page."""
    rules = load_config("disclosure.yaml")
    blocks = {name: renderer(data, rules) for name, renderer in RENDERERS.items()}
    sections = [{"id": key, "title": title, "blocks": blocks[key]} for key, title in SECTIONS]
    return _environment().get_template("report.html.j2").render(
        version=data["version"], sections=sections)


# blocks ---------------------------------------------------------------------------------------

def p(text: str) -> dict:
    """A paragraph block."""
    return {"kind": "p", "text": text}


def note(text: str) -> dict:
    """A paragraph block in grey: a side remark."""
    return {"kind": "note", "text": text}


def h3(text: str) -> dict:
    """A sub-heading block."""
    return {"kind": "h3", "text": text}


def table(headers: list[str], rows: list[list], text_columns: tuple[int, ...] = ()) -> dict:
    """A table block; ``text_columns`` (by index) are prose, left-aligned and wrapped."""
    return {"kind": "table", "headers": headers, "rows": [[str(c) for c in r] for r in rows],
            "text_columns": set(text_columns)}


def chart(figure, description: str) -> dict:
    """A chart block: the Altair ``figure`` rendered to inline SVG, ``description`` its
    accessible name and caption."""
    return {"kind": "chart", "svg": charts.svg(figure, description)}


def count(n: int, rules: dict) -> str:
    """A count as shown: 1 to 5 suppressed."""
    return rules["suppressed"] if 0 < n < rules["min_count"] else f"{n:,}"


def shown(n: int, rules: dict) -> int:
    """A count as a chart draws it: a suppressed count as nothing."""
    return 0 if 0 < n < rules["min_count"] else n


def rate(value: float, n: int, rules: dict) -> str:
    """A rate as shown: hidden (x) over fewer than the minimum count of records."""
    return rules["hidden_percentage"] if n < rules["min_count"] else f"{100 * value:.1f}%"


def interval(group: dict, rules: dict) -> str:
    """A group's 95% interval as shown, hidden where its rate is."""
    if group["records"] < rules["min_count"]:
        return rules["hidden_percentage"]
    return f"{100 * group['ci_low']:.1f}% to {100 * group['ci_high']:.1f}%"


def _rate_chart(rows: list[dict], category: str, rules: dict, *, title: str,
                category_title: str, value_title: str) -> list[dict]:
    """Bars of each group's rate with its 95% interval, labelled with the rate and the
    records; groups too small to show are left out of the chart (the table says x)."""
    shown_rows = [r for r in rows if r["records"] >= rules["min_count"]]
    if not shown_rows:
        return []
    frame = pd.DataFrame({
        "group": [r[category] for r in shown_rows],
        "rate": [r["rate"] for r in shown_rows],
        "low": [r["ci_low"] for r in shown_rows], "high": [r["ci_high"] for r in shown_rows],
        "label": [f"{100 * r['rate']:.1f}% of {count(r['records'], rules)}"
                  for r in shown_rows]})
    figure = charts.bars(frame, "group", "rate", title=title, value_title=value_title,
                         category_title=category_title, label="label",
                         order=list(frame.group), low="low", high="high", percent=True,
                         domain=(0, 1))
    return [chart(figure, f"{title}, with 95% intervals")]


# sections -------------------------------------------------------------------------------------

def _render_summary(data, rules) -> list[dict]:
    return [table(["measure", "value"], [
        ["spine version", data["version"]], ["linked at", data["created_at"]],
        ["records", f"{data['records']:,}"], ["persons", f"{data['persons']:,}"],
        ["toolkit version", data["toolkit_version"]]]),
        p("Counts from 1 to 5 show as c; rates over fewer than 6 records as x.")]


def _render_sources(data, rules) -> list[dict]:
    rows = [[s["source"], count(s["records"], rules), rate(s["linked"], s["records"], rules),
             rate(s["cross_source"], s["records"], rules), interval(
                 {"records": s["records"], "ci_low": s["ci_low"], "ci_high": s["ci_high"]},
                 rules)] for s in data["sources"]]
    rates = [{"source": s["source"], "records": s["records"], "rate": s["cross_source"],
              "ci_low": s["ci_low"], "ci_high": s["ci_high"]} for s in data["sources"]]
    return [table(["source", "records", "linked to any record", "linked to another source",
                   "95% interval"], rows),
            *_rate_chart(rates, "source", rules, title="Records linked to another source",
                         category_title="source",
                         value_title="share of the source's records linked to another source")]


def _render_identifiers(data, rules) -> list[dict]:
    identifiers = data["identifiers"]
    if not identifiers["recorded"]:
        return [p("This spine version did not record which identifiers its records hold (it "
                  "was linked before the toolkit kept them, or on a backend that did not): "
                  "completeness and unlinkable records are not recorded. Linking again "
                  "records them.")]
    complete = pd.DataFrame(identifiers["completeness"])
    out = [p("The share of each source's records that hold each identifier the model reads "
             "(a token, a name's Bloom filter, or a care-event date: only whether it is there, "
             "never its value). An identifier a source never holds cannot link its records; "
             "one held by few records links few.")]
    if not complete.empty:
        complete["label"] = [_share_label(held, n, rules) for held, n in
                             zip(complete.holding, complete.records, strict=True)]
        # a hidden share is drawn as an empty cell, so its shade does not tell it either
        complete["share"] = [0.0 if label == rules["hidden_percentage"] else share
                             for label, share in zip(complete.label, complete.share,
                                                     strict=True)]
        columns = sorted(set(complete.column))
        out.append(chart(charts.grid(
            complete, "source", "column", "share", "label",
            title="Share of each source's records holding each identifier",
            row_title="source", column_title="identifier (model column)",
            column_order=columns), "Completeness of each identifier by source"))
        # identifiers down, sources across: a source list stays narrow, identifiers grow
        wide = complete.pivot(index="column", columns="source", values="label")
        sources = list(wide.columns)
        out.append(table(["identifier", *sources],
                         [[column, *wide.loc[column, sources]] for column in columns]))
    unlinkable = identifiers["unlinkable"]
    out += [h3("Records that cannot link"),
            p("A record is unlinkable when even a perfect copy of itself would score below "
              "the threshold: the prior, plus for each comparison the weight of the strongest "
              "level its identifiers can reach (as Splink's unlinkables chart counts it, "
              "without term-frequency adjustments). Such a record stays alone whatever the "
              "other sources hold: more identifiers, not a lower threshold, would link it."),
            table(["source", "records", "unlinkable", "share"],
                  [[u["source"], count(u["records"], rules), count(u["unlinkable"], rules),
                    _share_label(u["unlinkable"], u["records"], rules, digits=1)]
                   for u in unlinkable])]
    frame = pd.DataFrame([{"source": u["source"], "share": u["share"] if u["records"] >=
                           rules["min_count"] and not 0 < u["unlinkable"] < rules["min_count"]
                           else 0.0,
                           "label": f"{count(u['unlinkable'], rules)} of "
                                    f"{count(u['records'], rules)}"} for u in unlinkable])
    if not frame.empty:
        top = max(0.05, float(frame.share.max()) * 1.4)
        out.append(chart(charts.bars(frame, "source", "share", title="Unlinkable records "
                                     "by source", value_title="share of the source's records",
                                     category_title="source", label="label", percent=True,
                                     domain=(0, min(1.3, top))),
                         "Share of each source's records that could not link even to a "
                         "perfect copy of themselves"))
    return out


def _share_label(part: int, whole: int, rules: dict, digits: int = 0) -> str:
    """A share as shown: hidden (x) when its whole is under the minimum count or its part a
    suppressed count (1 to 5: the share and the whole would give it away); below the last
    digit shown, "<" rather than a rounded 0."""
    if whole < rules["min_count"] or 0 < part < rules["min_count"]:
        return rules["hidden_percentage"]
    share = 100 * part / whole
    smallest = 10 ** -digits
    if 0 < share < smallest / 2:
        return f"<{smallest:g}%"
    return f"{share:.{digits}f}%"


def _bins_frame(bins: list, rules: dict, width: float = 1.0) -> pd.DataFrame:
    frame = pd.DataFrame(bins, columns=["start", "count"])
    frame["start"] = frame.start.astype(float)
    frame["end"] = frame.start + width
    frame["label"] = [f"{s:g} to {e:g}: {count(int(n), rules)}"
                      for s, e, n in zip(frame.start, frame.end, frame["count"], strict=True)]
    frame["count"] = [shown(int(n), rules) for n in frame["count"]]
    return frame


def _render_weights(data, rules) -> list[dict]:
    threshold = data["weights"]["threshold"]
    bins = data["weights"]["bins"]
    if threshold is None or not bins:
        return [p("This spine version did not record its match weights.")]
    figure = charts.histogram(_bins_frame(bins, rules), title="Candidate pairs by match weight",
                              x_title="match weight (bits, whole-weight bins)",
                              y_title="pairs", threshold=threshold,
                              threshold_label=f"threshold {threshold:g}")
    return [p("Every candidate pair kept (match probability 0.1 or more), by its match "
              "weight: log2 of how much likelier the pair's agreements are for one person "
              f"than for two. Pairs right of the threshold ({threshold:g}, the red line) join "
              "persons. A valley at the threshold means few pairs are in doubt; a bump just "
              "below it means links may be missed. Bins of 1 to 5 pairs are drawn empty."),
            chart(figure, "Candidate pairs by match weight, with the threshold")]


def _render_threshold(data, rules) -> list[dict]:
    curves = data["curves"]
    if not curves["rows"]:
        return [p("This spine version recorded neither its scored pairs nor its match "
                  "weights: the trade-off cannot be drawn.")]
    rows = pd.DataFrame(curves["rows"])
    threshold = curves["threshold"]
    measures = {"expected_precision": "expected precision (model)",
                "expected_recall": "expected recall (model)"}
    if curves["measured"]:
        measures.update({"precision": "measured precision (truth)",
                         "recall": "measured recall (truth)"})
    long = rows.melt(id_vars="threshold", value_vars=list(measures), var_name="measure")
    long["measure"] = long.measure.map(measures)
    figure = charts.curves(long, title="Precision and recall of the pairs at or above each "
                           "threshold", x_title="threshold (match weight, bits)",
                           threshold=threshold, threshold_label=f"threshold {threshold:g}")
    how = ("from every scored pair the spine keeps (scored_pair), each with its own match "
           "probability" if curves["source"] == "scored_pair" else
           "from the version's whole-weight bins of pairs (this spine keeps no scored pairs): "
           "each bin's pairs are taken at its middle weight, an approximation")
    out = [p("What moving the threshold would do. The model's own expectation: of the pairs "
             "at or above a threshold, the mean match probability is the expected precision "
             "(the share that are one person), and their summed probability over that of all "
             "scored pairs the expected recall. Computed " + how + "."),
           chart(figure, ("Expected and measured" if curves["measured"] else "Expected")
                 + " precision and recall against the threshold")]
    at = curves.get("at_threshold")
    if at:
        cells = [["threshold (match weight)", f"{at['threshold']:g}"],
                 ["pairs at or above", count(int(at["pairs"]), rules)],
                 ["expected precision", f"{at['expected_precision']:.4f}"],
                 ["expected recall", f"{at['expected_recall']:.4f}"]]
        if curves["measured"]:
            cells += [["measured precision", f"{at['precision']:.4f}"],
                      ["measured recall", f"{at['recall']:.4f}"]]
        out.append(table(["at the configured threshold", "value"], cells))
    if curves["measured"]:
        out.append(p("The measured curves count, among the scored pairs at or above each "
                     "threshold, those whose two records are one true person (precision), "
                     f"and those over all {curves['true_pairs']:,} true pairs of the spine's "
                     "records (recall; a pair blocking never proposed counts as missed). "
                     "They are pairwise, before clustering, so they differ from the accuracy "
                     "section's figures, which are of the persons made."))
    out.append(note("The threshold is match.threshold in configs/linkage_schema.yaml (a "
                    "probability; shown here as its match weight). Pre-links (one "
                    "provider's record across periods) are kept below it."))
    return out


def _explanations() -> dict:
    return load_config("model_explanations.yaml")


def level_sentence(level: dict, explanations: dict) -> str:
    """What a level means and why it weighs what it does: the configured sentence for its
    comparison and label (or its kind's generic one), then the trained numbers."""
    named = explanations["comparisons"].get(level["comparison"], {}).get("levels", {})
    kind = level["kind"]
    text = (named.get(level["level"]) or named.get(kind)
            or explanations["generic"][kind].format(label=level["level"]))
    weight = level["weight"]
    if weight is None or level["m"] is None:
        return text
    ratio = 2 ** abs(weight)
    shares = (f"Here m is {_percent(level['m'])} and u {_percent(level['u'])}: a pair at "
              f"this level is {ratio:,.1f} times likelier to be")
    fact = f"{shares} one person than two" if weight >= 0 else f"{shares} two people than one"
    return f"{text} {fact} ({weight:+.2f} bits)."


def _render_model(data, rules) -> list[dict]:
    explanations = _explanations()
    out = [p("Per comparison, m is how often true matches fall in a level and u how often "
             "non-matches do; the weight, log2(m / u) in bits, is the evidence the level "
             "carries: positive for one person, negative for two. A pair's match weight is "
             "the prior plus its levels' weights. Where either record lacks the field (the "
             "null level) the comparison adds 0.")]
    levels = data["model"]
    for comparison in dict.fromkeys(m["comparison"] for m in levels):
        named = explanations["comparisons"].get(comparison)
        rows = [m for m in levels if m["comparison"] == comparison]
        out.append(h3(comparison))
        out.append(p(named["meaning"] if named else
                     f"The comparison {comparison}, built from the linkage schema's default "
                     "for its kind; configs/model_explanations.yaml does not describe it."))
        out.append(table(["level", "m", "u", "weight (bits)", "what it means"],
                         [[m["level"], _probability(m["m"]), _probability(m["u"]),
                           "" if m["weight"] is None else f"{m['weight']:+.2f}",
                           level_sentence(m, explanations)] for m in rows],
                         text_columns=(0, 4)))
    weighted = [m for m in levels if m["weight"] is not None and m["kind"] != "missing"]
    if weighted:
        frame = pd.DataFrame({
            "level": [f"{m['comparison']}: {m['level']}" for m in weighted],
            "weight": [m["weight"] for m in weighted],
            "at": [max(m["weight"], 0.0) for m in weighted],
            "label": [f"{m['weight']:+.2f}" for m in weighted]})
        low = min(0.0, math.floor(frame.weight.min()))
        high = math.ceil(frame.weight.max()) + 2
        out.append(chart(charts.bars(frame, "level", "weight", title="Match weight of each "
                                     "level", value_title="match weight (bits)",
                                     category_title="comparison: level", label="label",
                                     label_at="at", domain=(low, high)),
                         "Match weight of each comparison level"))
    return out


def _render_unlinked(data, rules) -> list[dict]:
    rows = [[u["source"], u["reason"], count(u["records"], rules)] for u in data["unlinked"]]
    out = [p("Records in a person of their own, by the first quality flag their provider's "
             "file raised (docs/providers.md explains each flag): missing UPNs and invalid "
             "check letters explain most; 'no problem recorded' is children who are simply "
             "in one source only."),
           table(["source", "reason", "records"], rows, text_columns=(1,))]
    by_source: dict[str, int] = {}
    for u in data["unlinked"]:
        by_source[u["source"]] = by_source.get(u["source"], 0) + u["records"]
    if by_source:
        frame = pd.DataFrame({"source": list(by_source),
                              "records": [shown(n, rules) for n in by_source.values()],
                              "label": [count(n, rules) for n in by_source.values()]})
        out.append(chart(charts.bars(frame, "source", "records", title="Records left unlinked "
                                     "by source", value_title="records alone in their person",
                                     category_title="source", label="label",
                                     domain=(0, float(frame.records.max()) * 1.2 or 1)),
                         "Records left unlinked, by source"))
    return out


def _render_combinations(data, rules) -> list[dict]:
    combos = data["combinations"]
    out = [p("How many persons hold records of each combination of sources."),
           table(["sources", "persons"], [[c["sources"], count(c["persons"], rules)]
                                          for c in combos], text_columns=(0,))]
    if combos:
        top = combos[:15]
        frame = pd.DataFrame({"sources": [c["sources"] for c in top],
                              "persons": [shown(c["persons"], rules) for c in top],
                              "label": [count(c["persons"], rules) for c in top]})
        out.append(chart(charts.bars(frame, "sources", "persons", title="Persons by their "
                                     "sources" + (" (the 15 commonest)" if len(combos) > 15
                                                  else ""), value_title="persons",
                                     category_title="sources", label="label",
                                     domain=(0, float(frame.persons.max()) * 1.2 or 1)),
                         "Persons by the combination of sources of their records"))
    return out


def _render_bias(data, rules) -> list[dict]:
    out = [p("The share of each group's children's social care records (903, CIN, ASG "
             "children) linked to a record of another source, mostly a pupil record. Linkage "
             "that misses some groups more than others biases the disparities researchers "
             "measure. A gap is called out between the lowest and highest rates of groups of "
             "30 records or more only when their 95% intervals do not overlap.")]
    if not data.get("groups_by_custodian"):
        out.append(p("Breakdowns by ethnicity, sex and age band need the records' content, "
                     "which only the data custodian can open: run linkage report "
                     "--custodian-key with the bundles."))
    for dimension, groups in data["groups"].items():
        title = DIMENSION_TITLES.get(dimension, dimension)
        out.append(h3(title))
        gap = data["gaps"][dimension]
        if gap:
            out.append({"kind": "callout", "text": f"{title}: the largest gap is "
                        f"{gap['points']} percentage points, between {gap['highest']} and "
                        f"{gap['lowest']}."})
        out.append(table([title, "records", "linked to another source", "95% interval"],
                         [[g["group"], count(g["records"], rules),
                           rate(g["rate"], g["records"], rules), interval(g, rules)]
                          for g in groups]))
        out += _rate_chart(groups, "group", rules, title=f"Linked to another source, by {title}",
                           category_title=title, value_title="share of care records linked "
                                                             "to another source")
    return out


def _render_families(data, rules) -> list[dict]:
    families = data["families"]
    out = [table(["family key", "count"], [
        [name.replace("_", " "), count(families[name], rules)] for name in
        ("adopter_households", "child_adopter_links", "sibling_groups",
         "children_in_sibling_groups", "mother_child_links")])]
    for name, bins in families["confidence"].items():
        title = f"{name.replace('_', ' ')}: confidence"
        if not any(shown(n, rules) for _, n in bins):
            out.append(p(f"{title}: too few to draw."))
            continue
        # at least 10 points of confidence wide, so that one full bin is not the whole axis
        low = max(0.0, min(min(b for b, _ in bins), 90.0))
        out.append(chart(charts.histogram(_bins_frame(bins, rules), title=title,
                                          x_title="confidence (%, whole-percent bins)",
                                          y_title="links" if "link" in name else "children",
                                          domain=(low, 100.0)), title))
    return out


def _render_changes(data, rules) -> list[dict]:
    changes = data["changes"]
    if changes["previous_version"] is None:
        return [p("This is the spine's first version: there is no earlier version to "
                  "compare with.")]
    sizes = table(["version", "records", "persons"], [
        [changes["previous_version"], f"{changes['records_before']:,}",
         f"{changes['persons_before']:,}"],
        [data["version"], f"{data['records']:,}", f"{data['persons']:,}"]])
    if not changes["kinds"]:
        return [sizes, p("Every person key of the last version was kept with the same "
                         "records: no merge, split or retirement.")]
    return [sizes, p("Person keys this version changed (the spine's key_change table: a "
                     "merge joins persons, a split divides one, a retirement ends a person "
                     "whose records were withdrawn)."),
            table(["change", "person keys", "records"],
                  [[c["change"], count(c["keys"], rules), count(c["records"], rules)]
                   for c in changes["kinds"]])]


def _render_accuracy(data, rules) -> list[dict]:
    if "accuracy" not in data:
        return [p("No truth was given (--truth): accuracy is not measured.")]
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
    return [p("Against the synthetic world's truth."), table(["measure", "value"], rows),
            *_render_accuracy_by_group(a.get("recall_by_group", {}), rules)]


def _render_accuracy_by_group(by_group: dict, rules: dict) -> list[dict]:
    """Pairwise recall and precision per group of the true person: a missed link that
    falls on one group more than another is what biases group comparisons."""
    out = [p("Pairwise recall and precision by the true person's group. Recall is of the "
             "pairs of that group's records; a predicted pair counts for the group of the "
             "person its cluster mostly holds.")]
    for name, title in ACCURACY_GROUPS.items():
        groups = by_group.get(name)
        if not groups:
            continue
        order = _ordered(list(groups), "age_band" if name == "age_band" else name,
                         EthnicGroups.load(detailed=False).order
                         if name == "ethnic_group" else None)
        out.append(h3(title))
        out.append(table([title, "true pairs", "recall", "precision"],
                         [[group, count(groups[group]["true_pairs"], rules),
                           _fraction(groups[group]["recall"]),
                           _fraction(groups[group]["precision"])] for group in order]))
        rows = [{"group": group, "measure": measure, "value": groups[group][measure]}
                for group in order if groups[group]["true_pairs"] >= rules["min_count"]
                for measure in ("recall", "precision") if groups[group][measure] is not None]
        if rows:
            frame = pd.DataFrame(rows)
            frame["label"] = [f"{v:.3f}" for v in frame.value]
            out.append(chart(charts.grouped_bars(
                frame, "group", "measure", "value", "label", order=[
                    g for g in order if g in set(frame.group)],
                title=f"Pairwise recall and precision by {title}",
                category_title=title, value_title="share of pairs"),
                f"Pairwise recall and precision by the true person's {title}"))
    return out


def _probability(value: float | None) -> str:
    """m or u: six decimals, three significant figures below 0.001 (a strong level's u is
    far below it), and within a millionth of 1 how far below 1 it is."""
    if value is None:
        return ""
    if value > 0.999999:  # not a rounded 1: say how far below it
        return f"1 - {1 - value:.3g}"
    return f"{value:.6f}" if value >= 0.001 else f"{value:.3g}"


def _percent(value: float) -> str:
    """A share as a percentage: three significant figures (0.00042%, 12.5%), more where it
    is within 0.1 points of 100% (99.9996%, never a rounded 100%)."""
    if value > 0.999:  # enough decimals to show the first two digits of its distance to 100%
        gap = 100 * (1 - value)
        decimals = 4 if gap <= 0 else max(4, 1 - math.floor(math.log10(gap)))
        return f"{100 * value:.{decimals}f}%"
    return f"{100 * value:.3g}%"


def _fraction(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


RENDERERS = {"summary": _render_summary, "sources": _render_sources,
             "identifiers": _render_identifiers, "weights": _render_weights,
             "threshold": _render_threshold, "model": _render_model,
             "unlinked": _render_unlinked, "combinations": _render_combinations,
             "bias": _render_bias, "families": _render_families,
             "changes": _render_changes, "accuracy": _render_accuracy}
