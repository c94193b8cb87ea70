"""How much of a cohort can be followed into education data: the outcomes statistics report
the share of children excluded for having no usable UPN, and linkage adds the share that no
pupil record was linked to (configs/release.yaml, ``education_linkage``)."""

import pandas as pd


def upn_unusable(flags: pd.Series, unusable: list[str]) -> pd.Series:
    """Whether each record's flags (``a;b;c``) say its UPN cannot be used: a flag listed, or
    one starting with a listed name and ``_`` (``upn_unknown`` covers ``upn_unknown_UN1``)."""
    split = flags.fillna("").astype(str).str.split(";").explode()
    prefixes = tuple(f"{name}_" for name in unusable)
    hit = split.isin(unusable) | split.str.startswith(prefixes)
    return hit.groupby(level=0).any().reindex(flags.index, fill_value=False)


def education_linkage(members: set, content: dict, records: pd.DataFrame,
                      rules: dict) -> dict[str, int]:
    """Counts for the cohort: its children, those with no usable UPN in any of their records
    in the care sources, and those linked to no pupil record."""
    care = [content[(source, "record")] for source in rules["care_sources"]
            if (source, "record") in content]
    rows = pd.concat(care, ignore_index=True) if care else pd.DataFrame(
        columns=["person_key", "flags"])
    rows = rows[rows.person_key.isin(members)]
    usable = set(rows.person_key[~upn_unusable(rows["flags"], rules["upn_unusable_flags"])])
    pupils = set(records.person_key[records.source == rules["pupil_source"]])
    return {"children": len(members),
            "no_usable_upn": len(members - usable),
            "not_linked_to_pupil_data": len(members - pupils)}
