"""The Splink model, generated from the token columns present, so any source links without code.

Comparisons follow the token families of ``configs/linkage_schema.yaml``: UPN (either UPN or
former UPN agreeing), date of birth with sex (exact, swapped day and month), postcode (full,
sector), names (Dice similarity of Bloom filters, in SQL, where their salts agree), and the
care events that adoption records share with 903 returns. Blocking rules keep the pairs compared
close to linear in the number of records.
"""

from functools import cache

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator

from linkage.config import load_config

NAME_LEVELS = (0.9, 0.7)
# kept beside each scored pair: the record numbers, and the pre-link key
RETAINED = ["rid", "prelink"]
# sex and date of birth on adoption (ASG) records only, for blocking them with other sources
ADOPTION_SEX_DOB = "adoption_sex_dob"
EVENT_DATES = ["entered_care_date", "matched_date", "placed_date", "adoption_order_date"]


def bits_column(column: str) -> str:
    """The column holding each Bloom filter's count of set bits, counted once per record
    when the records are registered, so Dice counts only the bits the two filters share."""
    return f"{column}_bits"


def digest_column(column: str) -> str:
    """The column holding a 64-bit digest of each Bloom filter: equal filters (the same
    name) have equal digests, so blocking joins on 8 bytes rather than 128."""
    return f"{column}_digest"


def dice(column: str, dialect: str = "duckdb") -> str:
    """Dice coefficient of two Bloom filters: DuckDB BIT columns, or (Spark) arrays of 64-bit
    words, whose shared set bits are counted word by word."""
    bits = bits_column(column)
    if dialect == "spark":
        both = (f"aggregate(zip_with({column}_l, {column}_r, (a, b) -> bit_count(a & b)), 0, "
                "(s, v) -> s + v)")
    else:
        both = f"bit_count({column}_l & {column}_r)"
    return f"{both} * 2.0 / ({bits}_l + {bits}_r)"


@cache
def _token_specs() -> dict:
    return load_config("linkage_schema.yaml")["tokens"]


def name_salt(column: str, columns: set[str]) -> str | None:
    """The column of the salt that a name filter column was salted with (the schema's
    ``salt``), if the records carry it: filters of different salts cannot be compared."""
    salt = _token_specs().get(column, {}).get("salt")
    return salt if salt in columns else None


def _upn(columns: set[str]):
    agree = "upn_l = upn_r"
    if "former_upn" in columns:
        agree += " OR upn_l = former_upn_r OR former_upn_l = upn_r"
    return cl.CustomComparison(output_column_name="upn", comparison_levels=[
        cll.CustomLevel("upn_l IS NULL OR upn_r IS NULL").configure(is_null_level=True),
        cll.CustomLevel(agree, label_for_charts="UPN or former UPN agree"),
        cll.ElseLevel(),
    ])


def _date_of_birth(columns: set[str]):
    levels = [cll.NullLevel("dob")]
    if "sex_dob" in columns:
        levels.append(cll.ExactMatchLevel("sex_dob", term_frequency_adjustments=True)
                      .configure(label_for_charts="DOB and sex agree"))
    levels.append(cll.ExactMatchLevel("dob").configure(label_for_charts="DOB agrees"))
    if "dob_swapped" in columns:
        levels.append(cll.CustomLevel("dob_l = dob_swapped_r OR dob_swapped_l = dob_r",
                                      label_for_charts="DOB day and month swapped"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(output_column_name="date_of_birth", comparison_levels=levels)


def _postcode(columns: set[str]):
    levels = [cll.NullLevel("postcode"), cll.ExactMatchLevel("postcode")]
    if "postcode_sector" in columns:
        levels.append(cll.ExactMatchLevel("postcode_sector"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(output_column_name="postcode", comparison_levels=levels)


def _name(column: str, dialect: str = "duckdb", salt: str | None = None,
          u: tuple[float, float] | None = None):
    """Dice of Bloom filters for hashed names; Jaro-Winkler for plaintext ones (baseline).

    Filters salted with different salts (``salt``, the salt's column) are unrelated bit
    patterns, so such a pair is the null level: the names are missing evidence, not a
    disagreement. ``u`` fixes the u of the two agreement levels (see ``run.counted_u``)."""
    missing = f"{column}_l IS NULL OR {column}_r IS NULL"
    if salt:
        missing += f" OR {salt}_l <> {salt}_r"
    levels = [cll.CustomLevel(missing).configure(is_null_level=True)]
    if column.endswith("_bloom"):
        # equal digests are equal filters (Dice 1): most true pairs skip the bit counting,
        # and Splink's EM sees that a rule blocking on the digest used this name
        digest = digest_column(column)
        conditions = [f"{dice(column, dialect)} >= {threshold}" for threshold in NAME_LEVELS]
        conditions[0] = f"{digest}_l = {digest}_r OR {conditions[0]}"
        levels += [cll.CustomLevel(condition, label_for_charts=f"Dice >= {threshold}")
                   for condition, threshold in zip(conditions, NAME_LEVELS, strict=True)]
    else:
        levels += [cll.JaroWinklerLevel(column, threshold) for threshold in (0.95, 0.85)]
    levels.append(cll.ElseLevel())
    if u is not None:
        for level, level_u in zip(levels[1:], (*u, 1 - sum(u)), strict=True):
            level.configure(u_probability=level_u, fix_u_probability=True)
    return cl.CustomComparison(output_column_name=column.removesuffix("_bloom"),
                               comparison_levels=levels)


def _counted(levels: list, u: float | None) -> list:
    """Fix the u of a comparison's agreement level (and its else level) to a counted value."""
    if len(levels) != 3:
        raise ValueError("a counted u needs exactly a null, an agreement and an else level")
    if u is not None:
        levels[1].configure(u_probability=u, fix_u_probability=True)
        levels[2].configure(u_probability=1 - u, fix_u_probability=True)
    return levels


def _care_events(columns: set[str], u: float | None = None):
    present = [c for c in EVENT_DATES if c in columns]
    any_null = " AND ".join(f"({c}_l IS NULL OR {c}_r IS NULL)" for c in present)
    # the week tokens serve family keys; as a person comparison they are too rare to train
    levels = [cll.CustomLevel(any_null).configure(is_null_level=True),
              cll.CustomLevel(" OR ".join(f"{c}_l = {c}_r" for c in present),
                              label_for_charts="a care event on the same date"),
              cll.ElseLevel()]
    return cl.CustomComparison(output_column_name="care_events",
                               comparison_levels=_counted(levels, u))


LA_SOURCES = "('ssda903', 'cin')"


def _la_record_id(u: float | None = None):
    """An LA's case system often numbers a child the same in its 903 and CIN returns."""
    same = (f"source_l IN {LA_SOURCES} AND source_r IN {LA_SOURCES} AND "
            "provider_l = provider_r AND record_id_l = record_id_r")
    return cl.CustomComparison(output_column_name="la_record_id", comparison_levels=_counted([
        cll.CustomLevel("record_id_l IS NULL OR record_id_r IS NULL").configure(
            is_null_level=True),
        cll.CustomLevel(same, label_for_charts="same LA, same child id"),
        cll.ElseLevel(),
    ], u))


def name_column(name: str, columns: set[str]) -> str | None:
    """The Bloom filter column of a name, or its plaintext column in the baseline."""
    return next((c for c in (f"{name}_bloom", name) if c in columns), None)


def same_name(name: str, columns: set[str]) -> tuple[str, str]:
    """The column and the SQL for two records' names agreeing exactly: Bloom filters join on
    their digests (8 bytes, not 128), plaintext names (the baseline) on themselves."""
    column = name_column(name, columns) or f"{name}_bloom"
    if column.endswith("_bloom"):
        column = digest_column(column)
    return column, f"l.{column} = r.{column}"


def comparisons(columns: set[str], dialect: str = "duckdb",
                counted_u: dict | None = None) -> list:
    """The comparisons that the token columns present support; ``counted_u`` gives the u of
    the rare agreement levels counted over all pairs (see ``run.counted_u``)."""
    counted_u = counted_u or {}
    out = [_la_record_id(counted_u.get("la_record_id"))]
    if "upn" in columns:
        out.append(_upn(columns))
    if "dob" in columns:
        out.append(_date_of_birth(columns))
    if "postcode" in columns:
        out.append(_postcode(columns))
    for name in ("forename", "surname"):
        column = name_column(name, columns)
        if column:
            out.append(_name(column, dialect, name_salt(column, columns),
                             counted_u.get(column)))
    if any(c in columns for c in EVENT_DATES):
        out.append(_care_events(columns, counted_u.get("care_events")))
    return out


def blocking_rules(columns: set[str]) -> list[str]:
    """Rules that find candidate pairs; each needs agreement on something rare."""
    # the same provider record across periods, and an LA's 903 and CIN records of one id
    rules = ["l.prelink = r.prelink"]
    candidates = [
        (["upn"], "l.upn = r.upn"),
        (["upn", "former_upn"], "l.upn = r.former_upn"),
        (["upn", "former_upn"], "l.former_upn = r.upn"),
        (["sex_dob", "postcode_sector"],
         "l.sex_dob = r.sex_dob AND l.postcode_sector = r.postcode_sector"),
        _same_birthday_and_name("forename", columns),
        _same_birthday_and_name("surname", columns),
        # within one LA's returns (CIN carries neither names nor postcode); not within the
        # national school census, where one date of birth is shared by hundreds of pupils
        (["sex_dob"], f"l.sex_dob = r.sex_dob AND l.provider = r.provider AND l.source IN "
                      f"{LA_SOURCES} AND r.source IN {LA_SOURCES}"),
        (["dob_swapped", "postcode_sector"],
         "l.dob_swapped = r.dob AND l.postcode_sector = r.postcode_sector"),
        # adoption records with every source: one side at a time, so that the join is on
        # the adoption records' dates only, not on every pair that shares a date of birth
        ([ADOPTION_SEX_DOB], f"l.{ADOPTION_SEX_DOB} = r.sex_dob"),
        ([ADOPTION_SEX_DOB], f"l.sex_dob = r.{ADOPTION_SEX_DOB}"),
        (["entered_care_date"], "l.entered_care_date = r.entered_care_date"),
        (["matched_date"], "l.matched_date = r.matched_date"),
    ]
    rules += [rule for needed, rule in candidates if all(c in columns for c in needed)]
    return rules


def _same_birthday_and_name(name: str, columns: set[str]) -> tuple[list[str], str]:
    """The columns needed and the rule for the same date of birth and name: a salted
    filter's digest alone says both (its salt is the date of birth with day and month
    unordered, so a day/month swap is found too)."""
    column, same = same_name(name, columns)
    bloom = name_column(name, columns)
    if bloom and name_salt(bloom, columns):
        return [column], same
    return ["dob", column], f"l.dob = r.dob AND {same}"


def settings(columns: set[str], dialect: str = "duckdb",
             counted_u: dict | None = None) -> SettingsCreator:
    """The linkage model for these token columns (link type dedupe over all bundles at once).
    Only the Dice SQL depends on the engine's ``dialect`` (duckdb or spark)."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(columns, dialect, counted_u),
        blocking_rules_to_generate_predictions=blocking_rules(columns),
        additional_columns_to_retain=RETAINED,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )


def training_rules(columns: set[str]) -> list[str]:
    """EM blocking rules: each leaves the other comparisons free to be estimated, and each
    selects pairs that are mostly true matches on evidence other than what it estimates."""
    forename, same_forename = same_name("forename", columns)
    candidates = [
        (["upn"], "l.upn = r.upn"),
        (["sex_dob", forename], f"l.sex_dob = r.sex_dob AND {same_forename}"),
        (["postcode", "dob"], "l.postcode = r.postcode AND l.dob = r.dob"),
    ]
    return [rule for needed, rule in candidates if all(c in columns for c in needed)]
