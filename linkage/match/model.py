"""The Splink model, built from the linkage schema and the token columns the bundles hold.

``configs/linkage_schema.yaml`` says what each comparison compares, level by level
(``comparisons``), what any other token column gets by its kind (``default``: an id number or
a suburb of a generic source compares exactly, with term-frequency adjustment; a name field by
its Bloom filters), and which blocking and training rules the linkage unit may use (``match``).
Nothing here lists the columns: a comparison is used when its columns are present.
"""

from functools import cache

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator

from linkage.config import load_config
from linkage.sources.schema import LA_SOURCES_SQL as LA_SOURCES
from linkage.sources.schema import RECORD_KEY

# kept beside each scored pair: the record numbers, and the pre-link key
RETAINED = ["rid", "prelink"]
# the record key's columns, which every record has and no comparison reads as a token
KEY_COLUMNS = set(RECORD_KEY)
# sex and date of birth on adoption (ASG) records only, for blocking them with other sources
ADOPTION_SEX_DOB = "adoption_sex_dob"
EVENT_DATES = ["entered_care_date", "matched_date", "placed_date", "adoption_order_date"]
BLOOM_SUFFIX = "_bloom"


class ModelError(ValueError):
    """The bundles cannot make or use a model: the message says what is missing or wrong."""


@cache
def linkage_schema() -> dict:
    """The linkage schema (validated when loaded)."""
    return load_config("linkage_schema.yaml")


def match_settings() -> dict:
    """The schema's ``match`` section: threshold, floors, blocking and training rules."""
    return linkage_schema()["match"]


def name_levels() -> list[float]:
    return list(linkage_schema()["name_levels"])


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


def name_salt(column: str, columns: set[str]) -> str | None:
    """The column of the salt that a name filter column was salted with (the schema's
    ``salt``, or its kind's for a generic field), if the records carry it: filters of
    different salts cannot be compared."""
    spec = linkage_schema()["tokens"].get(column) or field_kind(column)[1]
    salt = (spec or {}).get("salt")
    return salt if salt in columns else None


def field_kind(column: str) -> tuple[str, dict | None]:
    """A generic source's token column: its field, and its kind's rule in ``field_kinds``
    (told apart by the column's suffix, the longest that fits; None for no filter)."""
    kinds = linkage_schema()["field_kinds"]
    for kind in sorted(kinds, key=lambda k: -len(kinds[k]["suffix"])):
        suffix = kinds[kind]["suffix"]
        if suffix and column.endswith(suffix):
            return column.removesuffix(suffix), kinds[kind]
    return column, None


def name_column(name: str, columns: set[str]) -> str | None:
    """The Bloom filter column of a name, or its plaintext column in the baseline."""
    stem = name.removesuffix(BLOOM_SUFFIX)
    return next((c for c in (f"{stem}{BLOOM_SUFFIX}", stem) if c in columns), None)


def column_fields(column: str) -> set[str]:
    """The identifier fields a token column is made from, its salt's included: a rule on a
    name filter salted by the date of birth also agrees on (most of) the date of birth."""
    schema = linkage_schema()
    column = column.removesuffix("_digest")
    spec = schema["tokens"].get(column)
    if spec is None:  # a generic source's own field: a token, or a filter, by its name
        field, rule = field_kind(column)
        spec = {"fields": [field], **(rule or {})}
    fields = set(spec["fields"])
    if "salt" in spec:
        fields |= set(schema["tokens"][spec["salt"]]["fields"])
    return fields


def comparison_specs(columns: set[str], kinds: dict[str, str],
                     sources: set[str] | None = None,
                     groups: dict[str, str] | None = None) -> dict[str, dict]:
    """Each comparison the columns support: the schema's own, then a default one for every
    other token or Bloom filter column (a generic source's fields), by its kind, except that
    the columns of one of ``groups`` (an address's parts, as a mapping groups them) make one
    comparison, so that they count once. A builtin comparison of some ``sources`` only is
    used when records of one of them are linked."""
    groups = groups or {}
    schema = linkage_schema()
    specs = {}
    # a salt is not evidence of its own: it only says which name filters compare
    claimed = {spec["salt"] for spec in [*schema["tokens"].values(),
                                         *schema["field_kinds"].values()] if "salt" in spec}
    for name, spec in schema["comparisons"].items():
        claimed |= _named_columns(spec)
        if "builtin" in spec:
            if sources is None or set(spec.get("sources", sources)) & sources:
                specs[name] = spec
        elif _resolve(spec["missing"][0], columns) and spec["missing"][0] not in groups:
            specs[name] = spec  # (a field the mapping puts in a group is compared there)
    grouped: dict[str, list[str]] = {}
    for column, group in sorted(groups.items()):
        if column in columns and kinds.get(column) in schema["default"]:
            grouped.setdefault(group, []).append(column)
    for group, members in grouped.items():
        _add(specs, group, {"missing": members, "group": members})
    for column in sorted(columns - claimed - KEY_COLUMNS - set(groups)):
        kind = kinds.get(column)
        if kind in schema["default"]:
            template = schema["default"][kind]
            levels = [{k: (v.format(column=column) if isinstance(v, str) else v)
                       for k, v in level.items()} for level in template["levels"]]
            _add(specs, field_kind(column)[0], {"missing": [column], "levels": levels})
    return specs


def _add(specs: dict, name: str, spec: dict) -> None:
    """Add a comparison, refusing a second of one name (a group named like a field)."""
    if name in specs:
        raise ModelError(f"two comparisons would be named {name}: rename a field or group")
    specs[name] = spec


LEVEL_KINDS = ("equal", "either", "cross", "name")


def compared_columns(spec: dict) -> set[str]:
    """The columns a comparison's levels (or its group) compare, as the schema names them."""
    named = set(spec.get("group", []))
    for level in spec.get("levels", []):
        for kind in LEVEL_KINDS:
            value = level.get(kind)
            named |= set(value) if isinstance(value, list) else {value} if value else set()
    return named


def _named_columns(spec: dict) -> set[str]:
    named = compared_columns(spec) | set(spec.get("missing", []))
    return named | {f"{c}{BLOOM_SUFFIX}" for c in named} | {c.removesuffix(BLOOM_SUFFIX)
                                                             for c in named}


def _resolve(column: str, columns: set[str]) -> str | None:
    """A column as the records hold it: a name filter, or (plaintext baseline) the name."""
    if column in columns:
        return column
    return name_column(column, columns) if column.endswith(BLOOM_SUFFIX) else None


def comparisons(columns: set[str], kinds: dict[str, str] | None = None,
                dialect: str = "duckdb", counted_u: dict | None = None,
                sources: set[str] | None = None, groups: dict[str, str] | None = None) -> list:
    """The Splink comparisons the token columns support; ``counted_u`` gives the u of rare
    agreement levels counted over all pairs (see ``run.counted_u``)."""
    counted_u = counted_u or {}
    out = []
    for name, spec in comparison_specs(columns, kinds or {}, sources, groups).items():
        if spec.get("builtin") == "la_record_id":
            out.append(_la_record_id(counted_u.get(name)))
        elif spec.get("builtin") == "care_events":
            if any(c in columns for c in EVENT_DATES):
                out.append(_care_events(columns, counted_u.get(name)))
        elif "builtin" in spec:
            raise ValueError(f"comparison {name}: unknown builtin {spec['builtin']!r}")
        elif "group" in spec:
            out.append(_group(name, spec["group"], dialect))
        else:
            out.append(_comparison(name, spec, columns, dialect, counted_u.get(name)))
    return out


def _comparison(name: str, spec: dict, columns: set[str], dialect: str, u) -> object:
    first = _resolve(spec["missing"][0], columns)
    missing = " OR ".join(f"{c}_l IS NULL OR {c}_r IS NULL"
                          for c in (_resolve(c, columns) for c in spec["missing"]) if c)
    salt = name_salt(first, columns) if first.endswith(BLOOM_SUFFIX) else None
    if salt:
        missing += f" OR {salt}_l <> {salt}_r"
    levels = [cll.CustomLevel(missing).configure(is_null_level=True)]
    for level in spec["levels"]:
        levels += _levels(level, columns, dialect)
    levels.append(cll.ElseLevel())
    if u is not None:
        u = list(u) if isinstance(u, tuple | list) else [u]
        if len(u) != len(levels) - 2:
            raise ValueError(f"comparison {name}: {len(u)} counted u for {len(levels) - 2} "
                             "agreement levels")
        for level, level_u in zip(levels[1:], [*u, 1 - sum(u)], strict=True):
            level.configure(u_probability=level_u, fix_u_probability=True)
    return cl.CustomComparison(output_column_name=name, comparison_levels=levels)


def _levels(level: dict, columns: set[str], dialect: str) -> list:
    """The Splink levels of one schema level (none if its columns are absent)."""
    label = level.get("label")
    tf = bool(level.get("tf"))
    if "equal" in level:
        column = level["equal"]
        if column not in columns:
            return []
        out = cll.ExactMatchLevel(column, term_frequency_adjustments=tf)
        return [out.configure(label_for_charts=label) if label else out]
    if "either" in level or "cross" in level:
        a, b = level.get("either") or level["cross"]
        if a not in columns or ("cross" in level and b not in columns):
            return []
        agree = [f"{a}_l = {a}_r"] if "either" in level else []
        if b in columns:
            agree.append(f"{a}_l = {b}_r OR {b}_l = {a}_r")
        return [cll.CustomLevel(" OR ".join(agree), label_for_charts=label)]
    if "name" in level:
        return _name_levels(_resolve(level["name"], columns), dialect, tf)
    raise ValueError(f"a comparison level must say one of {', '.join(LEVEL_KINDS)}: {level}")


def _name_levels(column: str, dialect: str, tf: bool) -> list:
    """Dice of Bloom filters for hashed names; Jaro-Winkler for plaintext ones (baseline).

    With ``tf``, equal filters (equal digests) are a level of their own, weighed by how
    often the digest occurs; without, they join the first Dice level. Equal digests are
    equal filters (Dice 1): most true pairs skip the bit counting, and Splink's EM sees that
    a rule blocking on the digest used this name."""
    thresholds = name_levels()
    if not column.endswith(BLOOM_SUFFIX):
        return [cll.JaroWinklerLevel(column, threshold) for threshold in (0.95, 0.85)]
    digest = digest_column(column)
    conditions = [f"{dice(column, dialect)} >= {threshold}" for threshold in thresholds]
    levels = [cll.CustomLevel(condition, label_for_charts=f"Dice >= {threshold}")
              for condition, threshold in zip(conditions, thresholds, strict=True)]
    if tf:
        exact = cll.CustomLevel(f"{digest}_l = {digest}_r", label_for_charts="same filter")
        return [exact.configure(tf_adjustment_column=digest, tf_adjustment_weight=1.0),
                *levels]
    levels[0] = cll.CustomLevel(f"{digest}_l = {digest}_r OR {conditions[0]}",
                                label_for_charts=f"Dice >= {thresholds[0]}")
    return levels


def _group(name: str, members: list[str], dialect: str):
    """One comparison of several columns that describe one thing (an address): levels by the
    share of the columns present on both records that agree (an exact token equal; a filter
    equal or at the first Dice level), so that a shared address counts once, not per part."""
    both = " + ".join(f"CAST({c}_l IS NOT NULL AND {c}_r IS NOT NULL AS INTEGER)"
                      for c in members)
    agree = " + ".join(f"CAST(coalesce({_agrees(c, dialect)}, false) AS INTEGER)"
                       for c in members)
    levels = [cll.CustomLevel(f"({both}) = 0").configure(is_null_level=True),
              cll.CustomLevel(f"({agree}) = ({both})", label_for_charts="all parts agree"),
              cll.CustomLevel(f"({agree}) * 2 >= ({both})", label_for_charts="most parts agree"),
              cll.CustomLevel(f"({agree}) >= 1", label_for_charts="some part agrees"),
              cll.ElseLevel()]
    return cl.CustomComparison(output_column_name=name, comparison_levels=levels)


def _agrees(column: str, dialect: str) -> str:
    if not column.endswith(BLOOM_SUFFIX):
        return f"{column}_l = {column}_r"
    digest = digest_column(column)
    return f"({digest}_l = {digest}_r OR {dice(column, dialect)} >= {name_levels()[0]})"


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
    levels = [cll.CustomLevel(any_null).configure(is_null_level=True),
              cll.CustomLevel(" OR ".join(f"{c}_l = {c}_r" for c in present),
                              label_for_charts="a care event on the same date"),
              cll.ElseLevel()]
    return cl.CustomComparison(output_column_name="care_events",
                               comparison_levels=_counted(levels, u))


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


def rule_columns(rule: str) -> set[str]:
    """The columns a blocking or training rule reads (``l.x`` and ``r.x``)."""
    import re

    return set(re.findall(r"\b[lr]\.([a-z_][a-z0-9_]*)", rule))


def usable(rules: list[str], columns: set[str]) -> list[str]:
    """The rules whose columns are all present."""
    return [rule for rule in rules if rule_columns(rule) <= columns]


def settings(columns: set[str], kinds: dict[str, str], blocking: list[str],
             dialect: str = "duckdb", counted_u: dict | None = None,
             sources: set[str] | None = None,
             groups: dict[str, str] | None = None) -> SettingsCreator:
    """The linkage model for these token columns (link type dedupe over all bundles at once).
    Only the Dice SQL depends on the engine's ``dialect`` (duckdb or spark)."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons(columns, kinds, dialect, counted_u, sources, groups),
        blocking_rules_to_generate_predictions=blocking,
        additional_columns_to_retain=RETAINED,
        retain_intermediate_calculation_columns=False,
        retain_matching_columns=False,
    )
