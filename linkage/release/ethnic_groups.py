"""Ethnic groups as tables show them (configs/ethnic_groups.yaml): detailed labels or GSS
harmonised major groups, never codes; and the choice between the two for each table."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from linkage.config import load_config
from linkage.release.disclosure import Protected, protect


@dataclass(frozen=True)
class EthnicGroups:
    """Labels of one level (detailed or major) for persons' ETHNIC codes."""

    detailed: bool
    config: dict

    @classmethod
    def load(cls, detailed: bool) -> "EthnicGroups":
        return cls(detailed, load_config("ethnic_groups.yaml"))

    @property
    def level(self) -> str:
        return "detailed" if self.detailed else "major"

    @property
    def order(self) -> list[str]:
        """Every label of this level, in table order (one row each, zeros included)."""
        if not self.detailed:
            return list(self.config["groups"])
        labels = [e["label"] for e in self.config["codes"].values()]
        return sorted([*labels, self.config["not_recorded"]["label"]], key=self._rank)

    def _rank(self, label: str) -> tuple[int, int]:
        # detailed labels are listed group by group, codes in the config's order
        entries = [*self.config["codes"].values(), self.config["not_recorded"]]
        index = next(k for k, e in enumerate(entries) if e["label"] == label)
        return self.config["groups"].index(entries[index]["group"]), index

    def labels(self, codes: pd.Series) -> pd.Series:
        """Each code's label at this level; a blank or unknown code is not recorded."""
        key = "label" if self.detailed else "group"
        mapping = {code: entry[key] for code, entry in self.config["codes"].items()}
        clean = codes.fillna("").astype(str).str.strip().str.upper()
        return clean.map(mapping).fillna(self.config["not_recorded"][key])

    def known(self, codes: pd.Series) -> pd.Series:
        """False where the ethnicity is refused, not obtained or not recorded."""
        unknown = self.config["not_recorded"]["group"]
        return EthnicGroups(False, self.config).labels(codes).ne(unknown)


def by_ethnic_group(build: Callable[[EthnicGroups], pd.DataFrame], rules: dict,
                    national: bool) -> tuple[pd.DataFrame, Protected, str]:
    """``build``'s counts by the detailed groups where counts allow, else by the major groups.

    Counts allow when at most ``detailed_max_suppressed_share`` of the detailed table's
    non-empty cells (totals excluded) would be suppressed. Only the chosen table is released:
    both would let one be subtracted from the other. Returns the counts, their protection and
    the level chosen."""
    detailed = EthnicGroups.load(True)
    counts = build(detailed)
    protected = protect(counts, rules, national)
    if suppressed_share(counts, protected) > detailed.config["detailed_max_suppressed_share"]:
        counts = build(EthnicGroups.load(False))
        protected = protect(counts, rules, national)
        return counts, protected, "major"
    return counts, protected, "detailed"


def suppressed_share(counts: pd.DataFrame, protected: Protected) -> float:
    """The share of a table's non-empty cells (totals excluded) that are suppressed."""
    body = protected.hidden[:-1, :-1]
    filled = counts.to_numpy() > 0
    return float((body & filled).sum() / filled.sum()) if filled.any() else 0.0


def grid(rows: pd.Series, columns: pd.Series, row_order: list[str], column_order: list[str],
         rows_name: str) -> pd.DataFrame:
    """Counts of (row, column) pairs, every listed row and column present (zeros shown)."""
    frame = pd.DataFrame({"row": rows.to_numpy(), "column": columns.to_numpy()})
    counts = frame.groupby(["row", "column"]).size()
    table = counts.unstack(fill_value=0) if len(counts) else pd.DataFrame()
    extra = sorted(set(table.index) - set(row_order))  # a label the order did not foresee
    table = table.reindex(index=[*row_order, *extra], columns=column_order, fill_value=0)
    table.index.name, table.columns.name = rows_name, None
    return table.astype(np.int64)
