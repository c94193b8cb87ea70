"""Why two records were linked or left apart: the waterfall of match weights of a scored pair.

A pair's match weight is the prior (how likely two records picked at random are one person,
as a weight) plus, for each comparison, the weight of the level the pair fell in
(log2 of m / u) and, where term frequencies adjust it, the adjustment. The spine keeps each
scored pair's levels (``scored_pair``: agreement patterns, never a value), and the model
gives each level's label and weight, so the waterfall is read back without any token: which
comparison agreed at which level, and how much evidence that was.
"""

import math

import pandas as pd

from linkage.match.model import match_settings

# Splink's floor on m and u before taking their ratio (its comparison_level module)
M_U_CLAMP_MIN = 1e-300


def level_weight(level: dict) -> float | None:
    """A level's match weight exactly as Splink scores it: 0 for the null level (nothing to
    compare), log2(m / u) otherwise; None when the model has no m or u for it."""
    if level.get("is_null_level"):
        return 0.0
    m, u = level.get("m_probability"), level.get("u_probability")
    if m is None or u is None:
        return None
    return math.log2(max(m, M_U_CLAMP_MIN) / max(u, M_U_CLAMP_MIN))


def level_table(model: dict) -> pd.DataFrame:
    """Every level of every comparison of a saved model, in the model's order: comparison,
    gamma (Splink's comparison vector value: -1 nothing to compare, 0 the else level),
    label, m, u, weight in bits and whether term frequencies adjust it."""
    rows = []
    for comparison in model["comparisons"]:
        levels = comparison["comparison_levels"]
        values = _vector_values(levels)
        for level, gamma in zip(levels, values, strict=True):
            rows.append({"comparison": comparison["output_column_name"], "gamma": gamma,
                         "label": level.get("label_for_charts", ""),
                         "m": level.get("m_probability"), "u": level.get("u_probability"),
                         "weight": level_weight(level),
                         "tf": bool(level.get("tf_adjustment_column"))})
    return pd.DataFrame(rows, columns=["comparison", "gamma", "label", "m", "u", "weight",
                                       "tf"])


def _vector_values(levels: list[dict]) -> list[int]:
    """Splink numbers a comparison's levels from the strongest down to 0 (the else level),
    the null level -1."""
    values, next_value = [], sum(1 for lv in levels if not lv.get("is_null_level")) - 1
    for level in levels:
        if level.get("is_null_level"):
            values.append(-1)
        else:
            values.append(next_value)
            next_value -= 1
    return values


def tf_comparisons(model: dict) -> list[str]:
    """The comparisons whose weights term frequencies adjust."""
    return [c["output_column_name"] for c in model["comparisons"]
            if any(lv.get("tf_adjustment_column") for lv in c["comparison_levels"])]


def prior_weight(model: dict) -> float:
    """The prior as a weight: log2 of the odds that two records picked at random are one
    person."""
    prior = model["probability_two_random_records_match"]
    return math.log2(prior / (1 - prior))


def probability(weight: float) -> float:
    """A match weight as a probability (as Splink turns one into the other)."""
    if weight >= 0:
        return 1.0 / (1.0 + 2.0 ** -weight)
    return 2.0 ** weight / (1.0 + 2.0 ** weight)


def gamma_sql(model: dict, comparison: str, weight_column: str) -> str:
    """SQL giving a comparison's level (gamma) from the weight Splink gave the pair for it
    (``mw_<comparison>``): Splink keeps the weights, not the levels, and each level's weight
    is a literal of the model. The strongest level of equal weight is taken."""
    levels = level_table(model)
    levels = levels[(levels.comparison == comparison) & levels.weight.notna()]
    whens = " ".join(f"WHEN abs({weight_column} - ({row.weight!r})) <= 1e-9 THEN {row.gamma}"
                     for row in levels.itertuples())
    return f"CAST(CASE {whens} END AS TINYINT)"


def level_label(label: str, gamma: int) -> str:
    """A level's label for a reader: the null level's and the else level's labels are
    Splink's SQL and its "All other comparisons"; they say what the level means instead."""
    if gamma == -1:
        return "not compared: missing on one side (names: or birthdays differ)"
    if gamma == 0:
        return "disagree: no agreement level reached"
    return label


def waterfall(pair: dict, model: dict, levels: pd.DataFrame | None = None) -> dict:
    """The waterfall of one scored pair (a row of ``scored_pair``): the prior, then each
    comparison's level, weight and term-frequency adjustment, their sum, and Splink's own
    match weight and probability beside it. ``levels``: the model's ``level_table``
    indexed by comparison and gamma, when many pairs are explained."""
    if levels is None:
        levels = level_table(model).set_index(["comparison", "gamma"])
    steps, total = [], prior_weight(model)
    for comparison in (c["output_column_name"] for c in model["comparisons"]):
        gamma = pair.get(f"gamma_{comparison}")
        if gamma is None or (isinstance(gamma, float) and math.isnan(gamma)):
            raise ValueError(f"the pair has no level for {comparison}: the model and the "
                             "spine's scored pairs differ")
        level = levels.loc[(comparison, int(gamma))]
        tf = float(pair.get(f"tf_{comparison}") or 0.0)
        weight = float(level.weight) + tf
        total += weight
        steps.append({"comparison": comparison, "level": level_label(level.label, gamma),
                      "gamma": int(gamma),
                      "level_weight": round(float(level.weight), 6),
                      "term_frequency_weight": round(tf, 6), "weight": round(weight, 6)})
    threshold = match_settings()["threshold"]
    return {"prior_weight": round(prior_weight(model), 6), "comparisons": steps,
            "match_weight": round(total, 6), "match_probability": round(probability(total), 6),
            "splink_match_weight": round(float(pair["match_weight"]), 6),
            "splink_match_probability": round(float(pair["match_probability"]), 6),
            "threshold_probability": threshold,
            "above_threshold": bool(pair["match_probability"] >= threshold),
            "prelinked": bool(pair.get("prelinked"))}
