"""Charts as inline SVG: Vega-Lite specifications (from Altair) rendered offline by vl-convert,
so a page needs no script and no network, and the same chart gives the same bytes."""

import re

import altair as alt
import vl_convert

FONT = "system-ui, sans-serif"


def chart_svg(chart: alt.TopLevelMixin) -> str:
    """The chart as an SVG element to put in a page (its XML prolog dropped)."""
    spec = chart.configure(font=FONT).configure_view(stroke=None).to_json(indent=None)
    svg = vl_convert.vegalite_to_svg(spec)
    return re.sub(r"^<\?xml[^>]*>\s*", "", svg)
