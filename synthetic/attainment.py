"""Key stage results: KS2 scaled scores and KS4 Attainment 8, worse on average for children in
care or in need, so that research on the linked data finds the gap it should.

Each pupil has one attainment (a standard normal draw) that persists between the key stages;
a child looked after, or in need, before the assessment sits ``gap_sd`` standard deviations
below it (configs/synthetic.yaml, ``attainment``).
"""

from statistics import NormalDist

import numpy as np
import pandas as pd

from synthetic.social_care import SocialCare

CARE_GROUPS = ("looked_after", "in_need", "none")


def assessment_dates(period: np.ndarray) -> np.ndarray:
    """The assessment date of each period's results: KS2 tests and KS4 exams are in May of
    the academic year that ends in ``period``."""
    return (period.astype(str).astype(object) + "-05-01").astype("datetime64[D]")


def care_group(person_id: np.ndarray, on: np.ndarray, care: SocialCare) -> np.ndarray:
    """``looked_after`` for a pupil looked after before ``on``, else ``in_need`` for one with
    a CIN referral before it, else ``none``."""
    def before(events: pd.DataFrame, column: str) -> np.ndarray:
        first = events.groupby("person_id")[column].min()
        when = first.astype("datetime64[s]").reindex(person_id).to_numpy()
        return ~np.isnat(when) & (when.astype("datetime64[D]") < on)

    looked_after = before(care.cla_periods, "start")
    in_need = before(care.cin_episodes, "referral_date")
    return np.select([looked_after, in_need], list(CARE_GROUPS[:2]), CARE_GROUPS[2])


def attainment_results(rng, pupils: pd.DataFrame, care: SocialCare, cfg: dict) -> pd.DataFrame:
    """Results of ``pupils`` (person_id, period, key_stage 2 or 4): the care group and the
    KS2 scores or the KS4 measures, as numbers (missing where the stage has none)."""
    person_id = pupils.person_id.to_numpy()
    period = pupils.period.to_numpy()
    group = care_group(person_id, assessment_dates(period), care)
    # one ability per person, shared by the pupil's KS2 and KS4 rows
    ids, index = np.unique(person_id, return_inverse=True)
    ability = rng.standard_normal(len(ids))[index]
    later = rng.standard_normal(len(ids))[index]
    rho = cfg["persistence"]
    ks2_latent = ability + _gap(group, cfg["gap_sd"]["ks2"])
    ks4_latent = rho * ability + np.sqrt(1 - rho ** 2) * later + _gap(group, cfg["gap_sd"]["ks4"])
    out = pupils[["person_id", "period", "key_stage"]].reset_index(drop=True)
    out["care_group"] = group
    ks2 = pupils.key_stage.to_numpy() == 2
    out = pd.concat([out, _ks2(rng, ks2_latent, ks2, cfg["ks2_scaled_score"],
                               cfg["subject_correlation"])], axis=1)
    return pd.concat([out, _ks4(rng, ks4_latent, ks2_latent, ~ks2, period, cfg)], axis=1)


def _gap(group: np.ndarray, gaps: dict) -> np.ndarray:
    return np.select([group == name for name in gaps], list(gaps.values()), 0.0)


def _ks2(rng, latent: np.ndarray, rows: np.ndarray, cfg: dict, r: float) -> pd.DataFrame:
    """Reading, maths and grammar, punctuation and spelling scaled scores, and whether each
    meets the expected standard."""
    out = {}
    for subject in ("read", "mat", "gps"):
        own = rng.standard_normal(len(latent))
        score = np.clip(np.round(cfg["mean"] + cfg["sd"] * (r * latent + np.sqrt(1 - r ** 2)
                                                            * own)), cfg["min"], cfg["max"])
        out[f"ks2_{subject}_score"] = np.where(rows, score, np.nan)
        out[f"ks2_{subject}_exp"] = np.where(rows, (score >= cfg["expected"]).astype(float),
                                             np.nan)
    return pd.DataFrame(out)


def _ks4(rng, latent: np.ndarray, prior: np.ndarray, rows: np.ndarray, period: np.ndarray,
         cfg: dict) -> pd.DataFrame:
    """Attainment 8, English and maths at grade 4 or above, and Progress 8 (Attainment 8
    against what the pupil's KS2 attainment predicts, in grades: a tenth of the points)."""
    att8_cfg = cfg["ks4_attainment8"]
    att8 = np.clip(np.round(att8_cfg["mean"] + att8_cfg["sd"] * latent, 1), att8_cfg["min"],
                   att8_cfg["max"])
    noise = cfg["english_maths_noise"]
    spread = np.sqrt(1 + noise ** 2)
    threshold = NormalDist().inv_cdf(1 - cfg["english_maths_grade4_share"]) * spread
    grade4 = latent + noise * rng.standard_normal(len(latent)) >= threshold
    expected = att8_cfg["mean"] + att8_cfg["sd"] * cfg["persistence"] * prior
    progress = np.round((att8 - expected) / 10, 2)
    published = rows & ~np.isin(period, cfg["progress8_not_published"])
    return pd.DataFrame({
        "ks4_att8": np.where(rows, att8, np.nan),
        "ks4_engmath_94": np.where(rows, grade4.astype(float), np.nan),
        "ks4_p8": np.where(published, progress, np.nan),
    })
