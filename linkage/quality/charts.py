"""The report's charts: Altair (Vega-Lite) specifications rendered to inline SVG by vl-convert,
offline, so the page needs no script and no CDN.

Every chart has axes with titles and labels its marks with their values. The data are small
frames the report has already aggregated (and disclosure-controlled: a suppressed count is
drawn as an empty bar, its label "c"). vl-convert renders the same specification to the same
SVG, so the page is deterministic.
"""

import hashlib
import json
import re
from html import escape

import altair as alt
import pandas as pd
import vl_convert

CURVES_HEIGHT = 220
WIDTH = 560          # the plotting area; labels and titles come beside it
# Liberation Sans has Arial's metrics: labels measured by vl-convert fit in a browser
FONT = "Liberation Sans, Arial, Helvetica, sans-serif"
# checking each specification against Vega-Lite's schema costs a second a report; the tests
# turn it on (tests/test_report.py)
VALIDATE = False
BLUE, RED, INK, ORANGE = "#1d70b8", "#d4351c", "#0b0c0c", "#f47738"


def _configured(chart: alt.TopLevelMixin) -> alt.TopLevelMixin:
    return (chart.configure(font=FONT, background="white")
            .configure_axis(labelFontSize=11, titleFontSize=12, labelLimit=340,
                            titleFontWeight="normal")
            # a browser's font can be a little wider than vl-convert measured
            .configure_axisY(titlePadding=14)
            .configure_title(fontSize=13, anchor="start", fontWeight="bold")
            .configure_legend(labelFontSize=11, titleFontSize=12, orient="bottom",
                              labelLimit=300)
            .configure_view(stroke=None))


def svg(chart: alt.TopLevelMixin, description: str) -> str:
    """The chart as an inline SVG in a figure: ``description`` is its accessible name and
    caption."""
    spec = _configured(chart).to_dict(validate=VALIDATE)
    text = _stable_ids(vl_convert.vegalite_to_svg(spec), spec)
    if "xlink:" not in text:  # an unused namespace would be the page's only outside address
        text = text.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "")
    text = re.sub(r'^<svg ', f'<svg role="img" aria-label="{escape(description)}" ',
                  text, count=1)
    text = text.replace('class="marks"', 'class="chart marks"', 1)
    return (f'<figure>{text}<figcaption>{escape(description)}</figcaption></figure>')


def _stable_ids(text: str, spec: dict) -> str:
    """vl-convert numbers clip paths and gradients with a counter of its process, so the
    same chart drawn after others would differ: each id is named instead by the chart's
    specification and its place in the chart (unique on the page, the same on every run)."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    names: dict[str, str] = {}
    for found in re.findall(r'id="((?:clip|gradient_)\d+)"', text):
        names.setdefault(found, f"v{digest}-{len(names)}")
    for old, new in names.items():
        text = text.replace(f'id="{old}"', f'id="{new}"').replace(f"url(#{old})",
                                                                     f"url(#{new})")
    return text


def bars(frame: pd.DataFrame, category: str, value: str, *, title: str, value_title: str,
         category_title: str, label: str, order: list[str] | None = None,
         low: str | None = None, high: str | None = None, percent: bool = False,
         domain: tuple[float, float] | None = None,
         label_at: str | None = None) -> alt.LayerChart:
    """Horizontal bars, one per category in ``order``, each labelled by its ``label``
    column (placed at the bar's end, the interval's end, or the ``label_at`` column); with
    ``low`` and ``high`` columns, an error bar for the interval."""
    order = order if order is not None else list(frame[category])
    scale = alt.Scale(domain=list(domain)) if domain else alt.Undefined
    axis = alt.Axis(format=".0%") if percent else alt.Axis(format=",.0f")
    y = alt.Y(f"{category}:N", sort=order, title=category_title)
    base = alt.Chart(frame).encode(y=y)
    layers = [base.mark_bar(color=BLUE, height={"band": 0.7}).encode(
        x=alt.X(f"{value}:Q", title=value_title, scale=scale, axis=axis))]
    end = value
    if low and high:
        layers.append(base.mark_rule(color=INK, strokeWidth=1.5).encode(
            x=alt.X(f"{low}:Q"), x2=f"{high}:Q"))
        layers.append(base.mark_tick(color=INK, thickness=1.5, size=10).encode(
            x=alt.X(f"{low}:Q")))
        layers.append(base.mark_tick(color=INK, thickness=1.5, size=10).encode(
            x=alt.X(f"{high}:Q")))
        end = high
    end = label_at or end
    layers.append(base.mark_text(align="left", dx=5, fontSize=11, color="#1b1b1b").encode(
        x=alt.X(f"{end}:Q"), text=f"{label}:N"))
    return alt.layer(*layers).properties(
        title=title, width=WIDTH - 120, height=alt.Step(22))


def histogram(frame: pd.DataFrame, *, title: str, x_title: str, y_title: str,
              threshold: float | None = None, threshold_label: str = "",
              domain: tuple[float, float] | None = None) -> alt.LayerChart:
    """Vertical bars over bins (``start``, ``end``, ``count``, ``label``), with the
    threshold as a red rule when given; ``domain`` fixes the x axis."""
    base = alt.Chart(frame)
    scale = alt.Scale(domain=list(domain)) if domain else alt.Undefined
    layers = [base.mark_bar(color=BLUE, stroke="white", strokeWidth=0.5, clip=True).encode(
        x=alt.X("start:Q", title=x_title, bin="binned", scale=scale), x2="end:Q",
        y=alt.Y("count:Q", title=y_title, axis=alt.Axis(format=",.0f")),
        tooltip=["label:N"])]
    if threshold is not None:
        rule = pd.DataFrame({"at": [threshold], "text": [threshold_label]})
        layers.append(alt.Chart(rule).mark_rule(color=RED, strokeWidth=2).encode(x="at:Q"))
        layers.append(alt.Chart(rule).mark_text(align="left", dx=4, dy=-4, baseline="bottom",
                                                color=RED, fontSize=11).encode(
            x="at:Q", y=alt.value(0), text="text:N"))
    return alt.layer(*layers).properties(title=title, width=WIDTH, height=180)


def curves(frame: pd.DataFrame, *, title: str, x_title: str, threshold: float,
           threshold_label: str) -> alt.LayerChart:
    """Lines of ``value`` against ``threshold`` per ``measure`` (precision, recall, expected
    or measured: the ``measure`` column names it), with the chosen threshold as a red rule."""
    lines = alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=14)).encode(
        x=alt.X("threshold:Q", title=x_title),
        y=alt.Y("value:Q", title="share of pairs", scale=alt.Scale(domain=[0, 1]),
                axis=alt.Axis(format=".0%")),
        color=alt.Color("measure:N", title=None,
                        scale=alt.Scale(range=[BLUE, ORANGE, "#00703c", "#912b88"])),
        strokeDash=alt.StrokeDash("measure:N", title=None))
    rule = pd.DataFrame({"at": [threshold], "text": [threshold_label]})
    layers = [lines,
              alt.Chart(rule).mark_rule(color=RED, strokeWidth=2).encode(x="at:Q"),
              # at the foot of the line, below the curves (near 0 only at high thresholds)
              alt.Chart(rule).mark_text(align="left", dx=4, dy=-4, baseline="bottom",
                                        color=RED, fontSize=11).encode(
                  x="at:Q", y=alt.value(CURVES_HEIGHT), text="text:N")]
    return alt.layer(*layers).properties(title=title, width=WIDTH, height=CURVES_HEIGHT)


def grid(frame: pd.DataFrame, row: str, column: str, value: str, label: str, *, title: str,
         row_title: str, column_title: str, column_order: list[str] | None = None
         ) -> alt.LayerChart:
    """A table of shaded cells (``value`` from 0 to 1), each labelled by ``label``."""
    base = alt.Chart(frame).encode(
        x=alt.X(f"{column}:N", title=column_title, sort=column_order,
                axis=alt.Axis(orient="top", labelAngle=-35, labelLimit=160)),
        y=alt.Y(f"{row}:N", title=row_title))
    cells = base.mark_rect(stroke="white").encode(
        color=alt.Color(f"{value}:Q", title="share holding it",
                        scale=alt.Scale(domain=[0, 1], scheme="blues"),
                        legend=alt.Legend(format=".0%")))
    text = base.mark_text(fontSize=10).encode(
        text=f"{label}:N",
        color=alt.condition(f"datum.{value} > 0.6", alt.value("white"), alt.value("black")))
    return alt.layer(cells, text).properties(title=title, width=alt.Step(58),
                                             height=alt.Step(24))


def grouped_bars(frame: pd.DataFrame, category: str, measure: str, value: str, label: str, *,
                 order: list[str], title: str, category_title: str,
                 value_title: str) -> alt.LayerChart:
    """Horizontal bars of several measures (``measure``) per category, side by side, each
    labelled; values are shares from 0 to 1."""
    base = alt.Chart(frame).encode(
        y=alt.Y(f"{category}:N", sort=order, title=category_title),
        yOffset=alt.YOffset(f"{measure}:N"))
    layers = [base.mark_bar(height={"band": 0.9}).encode(
                  x=alt.X(f"{value}:Q", title=value_title, scale=alt.Scale(domain=[0, 1]),
                          axis=alt.Axis(format=".0%")),
                  color=alt.Color(f"{measure}:N", title=None,
                                  scale=alt.Scale(range=[BLUE, ORANGE]))),
              base.mark_text(align="left", dx=4, fontSize=10).encode(
                  x=alt.X(f"{value}:Q"), text=f"{label}:N")]
    return alt.layer(*layers).properties(title=title, width=WIDTH - 120,
                                         height=alt.Step(14))
