"""Disclosure control for released tables (configs/disclosure.yaml; docs/researchers.md).

A table is a grid of counts with row and column totals. Primary suppression hides counts below
the threshold (on the true counts, before any rounding). Secondary suppression then makes sure
no suppressed cell can be worked back from the totals: first no row or column (totals
included) may have exactly one hidden entry; then, since lines that each hide two entries can
still pin one down together (two blocks of hidden cells joined by one cell), every hidden entry
is tested against the whole system of row and column sums, and one that it determines gets a
partner in its row. National figures are rounded after that. Percentages are computed from the
true counts, then rounded, and hidden wherever their part or whole is.
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
    counts: pd.DataFrame | None = None  # the true counts with totals (never released)
    hidden: np.ndarray | None = None    # which entries of ``counts`` are suppressed


def with_totals(counts: pd.DataFrame) -> pd.DataFrame:
    """The counts with a Total column and a Total row."""
    out = counts.astype(np.int64).copy()
    out[TOTAL] = out.sum(axis=1)
    out.loc[TOTAL] = out.sum(axis=0)
    return out


def suppression_mask(full: pd.DataFrame, rules: dict) -> tuple[np.ndarray, int, int]:
    """Which entries of ``full`` (counts with totals) to hide: primary, then secondary, until
    no hidden entry can be worked back from the shown ones."""
    values = full.to_numpy()
    low = values < rules["min_count"]
    hidden = low & ((values > 0) | rules.get("suppress_zero", False))
    primary = int(hidden.sum())
    while _pair_lone_entries(values, hidden) or _break_recoverable(values, hidden):
        pass
    return hidden, primary, int(hidden.sum()) - primary


def _pair_lone_entries(values: np.ndarray, hidden: np.ndarray) -> bool:
    """Give every line with exactly one hidden entry a second one; True if any was added."""
    added = False
    changed = True
    while changed:
        changed = False
        for line in _lines(values.shape):
            if hidden[line].sum() == 1:
                changed |= _hide_another(values, hidden, line)
        added |= changed
    return added


def _break_recoverable(values: np.ndarray, hidden: np.ndarray) -> bool:
    """Hide a partner for the first hidden entry the shown entries determine (row first, then
    column); True if one was hidden. The next round of line pairing closes the loop."""
    found = np.argwhere(recoverable(hidden))
    rows, columns = values.shape
    for i, j in found:
        for line in ((np.full(columns, i), np.arange(columns)),
                     (np.arange(rows), np.full(rows, j))):
            if _hide_another(values, hidden, line):
                return True
    if len(found):  # its row and column are all hidden: the table's smallest shown cell
        everything = (np.repeat(np.arange(rows), columns), np.tile(np.arange(columns), rows))
        return _hide_another(values, hidden, everything)
    return False


def _lines(shape: tuple[int, int]):
    """Every row and every column, each with its total (the last entry)."""
    rows, columns = shape
    for i in range(rows):
        yield (np.full(columns, i), np.arange(columns))
    for j in range(columns):
        yield (np.arange(rows), np.full(rows, j))


def _hide_another(values: np.ndarray, hidden: np.ndarray, line) -> bool:
    """Hide the smallest shown non-zero cell of a line (before its total); False if none.

    A zero as a partner protects nothing: the pair's sum would be the suppressed count. The
    total is hidden only when no cell of the line is left."""
    rows, columns = line
    shown = [k for k in range(len(rows)) if not hidden[rows[k], columns[k]]]
    cells = [k for k in shown if k < len(rows) - 1]
    candidates = ([k for k in cells if values[rows[k], columns[k]] > 0] or cells
                  or shown)
    if not candidates:
        return False
    k = min(candidates, key=lambda k: (values[rows[k], columns[k]], k))
    hidden[rows[k], columns[k]] = True
    return True


def recoverable(hidden: np.ndarray) -> np.ndarray:
    """Which hidden entries of a table with totals (last row and column) are determined by the
    shown entries through the row and column sums: the entry's unit vector lies in the span of
    the sum equations restricted to the hidden entries."""
    rows, columns = hidden.shape
    unknowns = np.argwhere(hidden)
    found = np.zeros_like(hidden)
    if not len(unknowns):
        return found
    position = {tuple(u): k for k, u in enumerate(unknowns)}
    equations = []
    for line in _lines((rows, columns)):
        sign = np.ones(len(line[0]))
        sign[-1] = -1  # cells minus their total is zero
        equation = np.zeros(len(unknowns))
        for k, (i, j) in enumerate(zip(*line, strict=True)):
            if (i, j) in position:
                equation[position[(i, j)]] = sign[k]
        if equation.any():
            equations.append(equation)
    system = np.array(equations) if equations else np.zeros((0, len(unknowns)))
    rank = np.linalg.matrix_rank(system) if len(system) else 0
    for k, (i, j) in enumerate(unknowns):
        unit = np.zeros(len(unknowns))
        unit[k] = 1
        found[i, j] = np.linalg.matrix_rank(np.vstack([system, unit])) == rank
    return found


def rounded(values, rules: dict):
    """National figures to the nearest ``national_rounding`` (halves up)."""
    step = rules["national_rounding"]
    return (np.floor(np.asarray(values) / step + 0.5) * step).astype(np.int64)


def protect(counts: pd.DataFrame, rules: dict, national: bool = False) -> Protected:
    """Totals, suppression (on the true counts) and, for national figures, rounding after it;
    counts shown as text. The first column's header names the rows (``counts.index.name``)."""
    full = with_totals(counts)
    hidden, primary, secondary = suppression_mask(full, rules)
    shown = full.copy()
    if national:
        shown = pd.DataFrame(rounded(shown, rules), index=shown.index, columns=shown.columns)
    text = shown.astype(str).mask(hidden, rules["suppressed"])
    return Protected(text, {"primary_suppressed": primary, "secondary_suppressed": secondary,
                            "rounded_to": rules["national_rounding"] if national else None},
                     counts=full, hidden=hidden)


def percentages(protected: Protected, rules: dict) -> pd.DataFrame:
    """Each cell as a whole-number percentage of its row total, from the true counts (not the
    rounded ones), hidden where the count or its row total is suppressed or the total is 0."""
    counts = protected.counts.to_numpy().astype(float)
    whole = counts[:, -1:]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.floor(100 * counts / whole + 0.5)
    blind = protected.hidden | protected.hidden[:, -1:] | (whole == 0)
    text = pd.DataFrame(share, index=protected.counts.index,
                        columns=protected.counts.columns).fillna(0).astype(np.int64).astype(str)
    return text.mask(blind, rules["hidden_percentage"])


def leaks(table: pd.DataFrame, marker: str, total_released: bool = False) -> list[str]:
    """Problems of a released table (row labels as index, a Total row; a Total column when
    rows are additive): lines with exactly one suppressed entry, and suppressed entries the
    shown entries determine. ``total_released``: the table's Total row was dropped because
    it is released elsewhere (an attacker knows it). Empty when the table is safe."""
    text = table.astype(str)
    if total_released:
        text.loc[TOTAL] = "0"
    if TOTAL not in text.columns:  # columns protected one by one: each is its own table
        return [problem for column in text.columns
                for problem in leaks(text[[column]].assign(**{TOTAL: text[column]}), marker)]
    hidden = (text == marker).to_numpy()
    problems = [f"{'row' if k < hidden.shape[0] else 'column'} "
                f"{(list(text.index) + list(text.columns))[k]!r}: one suppressed entry"
                for k, line in enumerate(_lines(hidden.shape)) if hidden[line].sum() == 1]
    for i, j in zip(*np.nonzero(recoverable(hidden)), strict=True):
        problems.append(f"{text.index[i]!r}, {text.columns[j]!r}: worked back from the totals")
    return problems
