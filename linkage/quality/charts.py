"""Small inline SVG charts: a report that works offline needs no script and no CDN."""

from html import escape

WIDTH, BAR_HEIGHT, LABEL_WIDTH = 760, 18, 330


def bar_chart(title: str, bars: list[tuple[str, float]], unit: str = "",
              marker: float | None = None) -> str:
    """Horizontal bars, one per (label, value); values of 0 or more."""
    top = max((v for _, v in bars), default=0) or 1
    height = BAR_HEIGHT * len(bars) + 30
    rows = []
    for i, (label, value) in enumerate(bars):
        y = 24 + i * BAR_HEIGHT
        length = (WIDTH - LABEL_WIDTH - 80) * value / top
        rows.append(
            f'<text x="{LABEL_WIDTH - 6}" y="{y + 12}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar" x="{LABEL_WIDTH}" y="{y + 2}" width="{length:.1f}" '
            f'height="{BAR_HEIGHT - 4}"><title>{escape(label)}: {value:g}{unit}</title></rect>'
            f'<text x="{LABEL_WIDTH + length + 4:.1f}" y="{y + 12}">{value:g}{unit}</text>')
    return _svg(title, height, "".join(rows))


def histogram(title: str, bins: list[tuple[float, int]], threshold: float | None = None,
              x_label: str = "") -> str:
    """Vertical bars over numeric bins (bin start, count), with an optional threshold line."""
    if not bins:
        return _svg(title, 60, '<text x="10" y="40">no data</text>')
    low, high = bins[0][0], bins[-1][0] + 1
    top = max(c for _, c in bins) or 1
    plot_w, plot_h, left, base = WIDTH - 60, 160, 40, 190

    def x(value: float) -> float:
        return left + plot_w * (value - low) / (high - low)

    width = plot_w / max(len(bins), 1)
    parts = [f'<rect class="bar" x="{x(start):.1f}" y="{base - plot_h * c / top:.1f}" '
             f'width="{max(width - 1, 1):.1f}" height="{plot_h * c / top:.1f}">'
             f'<title>{start:g} to {start + 1:g}: {c:,}</title></rect>' for start, c in bins]
    if threshold is not None and low <= threshold <= high:
        parts.append(f'<line class="threshold" x1="{x(threshold):.1f}" y1="{base - plot_h}" '
                     f'x2="{x(threshold):.1f}" y2="{base}"/>'
                     f'<text x="{x(threshold) + 4:.1f}" y="{base - plot_h + 10}">threshold '
                     f'{threshold:g}</text>')
    parts.append(f'<line class="axis" x1="{left}" y1="{base}" x2="{left + plot_w}" '
                 f'y2="{base}"/><text x="{left}" y="{base + 16}">{low:g}</text>'
                 f'<text x="{left + plot_w}" y="{base + 16}" text-anchor="end">{high:g}</text>'
                 f'<text x="{left + plot_w / 2:.0f}" y="{base + 16}" text-anchor="middle">'
                 f'{escape(x_label)}</text>')
    return _svg(title, base + 24, "".join(parts))


def _svg(title: str, height: int, body: str) -> str:
    return (f'<figure><svg class="chart" role="img" width="{WIDTH}" height="{height}" '
            f'viewBox="0 0 {WIDTH} {height}" xmlns="http://www.w3.org/2000/svg">'
            f'<title>{escape(title)}</title>{body}</svg>'
            f'<figcaption>{escape(title)}</figcaption></figure>')
