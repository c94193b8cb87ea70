"""Disclosure control for released tables (configs/disclosure.yaml, DOMAIN.md section 8).

A table is a grid of counts with row and column totals. Primary suppression hides counts below
the threshold. Secondary suppression then makes sure no suppressed cell can be worked back: in
every row and column (totals included), a line with exactly one hidden entry gets a second one,
its smallest shown cell, until no line has exactly one. National figures are rounded after that;
percentages are hidden where their part or whole is.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

TOTAL = "Total"


@dataclass
class Protected:
    """A table ready for release, and what disclosure control did to it."""

    table: pd.DataFrame                 # counts as text, suppressed cells marked
    actions: dict = field(default_factory=dict)


def with_totals(counts: pd.DataFrame) -> pd.DataFrame:
    """The counts with a Total column and a Total row."""
    out = counts.astype(np.int64).copy()
    out[TOTAL] = out.sum(axis=1)
    out.loc[TOTAL] = out.sum(axis=0)
    return out


def suppression_mask(full: pd.DataFrame, rules: dict) -> tuple[np.ndarray, int, int]:
    """Which entries of ``full`` (counts with totals) to hide: primary, then secondary."""
    values = full.to_numpy()
    low = values < rules["min_count"]
    hidden = low & ((values > 0) | rules.get("suppress_zero", False))
    primary = int(hidden.sum())
    while True:
        added = False
        for line in _lines(values.shape):
            if hidden[line].sum() == 1:
                added |= _hide_another(values, hidden, line)
        if not added:
            break
    return hidden, primary, int(hidden.sum()) - primary


def _lines(shape: tuple[int, int]):
    """Every row and every column, each with its total (the last entry)."""
    rows, columns = shape
    for i in range(rows):
        yield (np.full(columns, i), np.arange(columns))
    for j in range(columns):
        yield (np.arange(rows), np.full(rows, j))


def _hide_another(values: np.ndarray, hidden: np.ndarray, line) -> bool:
    """Hide the smallest shown entry of a line (a cell before its total); False if none."""
    rows, columns = line
    shown = [k for k in range(len(rows)) if not hidden[rows[k], columns[k]]]
    if not shown:
        return False
    cells = shown[:-1] if shown[-1] == len(rows) - 1 and len(shown) > 1 else shown
    k = min(cells, key=lambda k: (values[rows[k], columns[k]], k))
    hidden[rows[k], columns[k]] = True
    return True


def rounded(values, rules: dict):
    """National figures to the nearest ``national_rounding`` (halves up)."""
    step = rules["national_rounding"]
    return (np.floor(np.asarray(values) / step + 0.5) * step).astype(np.int64)


def protect(counts: pd.DataFrame, rules: dict, national: bool = False) -> Protected:
    """Totals, suppression and (for national figures) rounding; counts shown as text."""
    full = with_totals(counts)
    hidden, primary, secondary = suppression_mask(full, rules)
    shown = full.copy()
    if national:
        shown = pd.DataFrame(rounded(shown, rules), index=shown.index, columns=shown.columns)
    text = shown.astype(str).mask(hidden, rules["suppressed"])
    return Protected(text, {"primary_suppressed": primary, "secondary_suppressed": secondary,
                            "rounded_to": rules["national_rounding"] if national else None})


def percentages(protected: Protected, rules: dict) -> pd.DataFrame:
    """Each cell as a percentage of its row total, hidden where either is suppressed."""
    table = protected.table
    marker = rules["suppressed"]
    out = pd.DataFrame(index=table.index, columns=table.columns, dtype=object)
    for row in table.index:
        whole = table.loc[row, TOTAL]
        for column in table.columns:
            part = table.loc[row, column]
            if marker in (part, whole) or int(whole) == 0:
                out.loc[row, column] = rules["hidden_percentage"]
            else:
                out.loc[row, column] = f"{100 * int(part) / int(whole):.0f}"
    return out
