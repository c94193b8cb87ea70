"""The offline page of ``linkage explain``: each pair's waterfall of match weights as a chart
and a table. Records are lettered (A, B, ...): the page shows no record id, no identifier and
no token, only sources, providers, periods, person keys and agreement levels."""

import math
from pathlib import Path
from string import ascii_uppercase

import altair as alt
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from linkage.quality.charts import svg

TEMPLATES = Path(__file__).parent / "templates"
CHARTED_PAIRS = 20  # pairs drawn as charts (each takes a fifth of a second); tables give all


def record_letters(count: int) -> list[str]:
    """A, B, ..., Z, AA, AB, ...: short names for the records of one page."""
    out = []
    for n in range(count):
        name, n = "", n + 1
        while n:
            n, rest = divmod(n - 1, 26)
            name = ascii_uppercase[rest] + name
        out.append(name)
    return out


def waterfall_chart(steps: dict, threshold_probability: float) -> alt.LayerChart:
    """The prior and each comparison's weight as steps from the last total, the final match
    weight as a bar from zero, and the threshold as a line."""
    rows, total = [], 0.0
    for name, weight in [("prior", steps["prior_weight"]),
                         *((s["comparison"], s["weight"]) for s in steps["comparisons"])]:
        rows.append({"step": name, "start": total, "end": total + weight, "weight": weight,
                     "kind": "for one person" if weight >= 0 else "against"})
        total += weight
    rows.append({"step": "match weight", "start": 0.0, "end": total, "weight": total,
                 "kind": "total"})
    frame = pd.DataFrame(rows)
    frame["label"] = frame.weight.map(lambda w: f"{w:+.1f}")
    order = list(frame.step)
    threshold = math.log2(threshold_probability / (1 - threshold_probability))
    x = alt.X("step:N", sort=order, title=None, axis=alt.Axis(labelAngle=-30))
    bars = alt.Chart(frame).mark_bar().encode(
        x=x, y=alt.Y("start:Q", title="match weight (bits)"), y2="end:Q",
        color=alt.Color("kind:N", title=None, scale=alt.Scale(
            domain=["for one person", "against", "total"],
            range=["#00703c", "#d4351c", "#1d70b8"])))
    labels = alt.Chart(frame).mark_text(dy=-6).encode(
        x=x, y=alt.Y("end:Q"), text="label:N")
    rule = alt.Chart(pd.DataFrame({"threshold": [threshold]})).mark_rule(
        strokeDash=[4, 3], color="#505a5f").encode(y="threshold:Q")
    return alt.layer(bars, labels, rule).properties(
        width=640, height=260, title=f"Match weights (the dashed line: the threshold, "
                                     f"{threshold:+.2f} bits)")


def explain_page(explanation: dict) -> str:
    """The explanation (``pipelines.explain.explain``) as one offline HTML page."""
    records = explanation["records"]
    others = {p[side] for p in explanation["pairs"] for side in ("record_l", "record_r")}
    listed = [r["record"] for r in records]
    listed += sorted(others - set(listed))
    letters = dict(zip(listed, record_letters(len(listed)), strict=True))
    described = {r["record"]: r for r in records}
    rows = [{"label": letters[uid], **_parts(uid), **(
        {"person": described[uid]["person_key"],
         "link_confidence": described[uid]["link_confidence"]} if uid in described else
        {"person": "", "link_confidence": math.nan})} for uid in listed]
    scored = [i for i, p in enumerate(explanation["pairs"]) if p.get("waterfall")]
    charted = set(scored[:CHARTED_PAIRS])
    pairs = [{**p, "label_l": letters[p["record_l"]], "label_r": letters[p["record_r"]],
              "chart": svg(waterfall_chart(p["waterfall"],
                                           explanation["threshold_probability"]),
                           f"Match weights of records {letters[p['record_l']]} and "
                           f"{letters[p['record_r']]}")
              if i in charted else ""} for i, p in enumerate(explanation["pairs"])]
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape())
    return env.get_template("explain.html.j2").render(
        version=explanation["version"], threshold=explanation["threshold_probability"],
        records=rows, pairs=pairs, charted=len(charted), scored=len(scored))


def _parts(unique_id: str) -> dict:
    source, provider, period, _ = unique_id.split("|", 3)
    return {"source": source, "provider": provider, "period": period}
