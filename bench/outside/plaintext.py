"""A well-configured plaintext Splink 5 model: the baseline the hashed matcher is held to.

It reads the raw data (not our hashing) through the same mapping: each mapped field becomes a
comparison chosen by the field's kind:

- forename and surname: exact (term-frequency adjusted), swapped with the other name,
  Jaro-Winkler >= 0.92 and >= 0.80;
- the address (street number, street, suburb or town, postcode) as one comparison, since its
  parts are one fact: the same address, same number with street or postcode alike, same
  street and postcode, same postcode, same suburb or town;
- other name-kind text (FEBRL's address_2): exact (term frequencies), Jaro-Winkler
  >= 0.90 and >= 0.75;
- exact and postcode kinds (ids, street numbers, postcodes): exact (term frequencies),
  one edit (Damerau-Levenshtein <= 1, a typo or transposition);
- date of birth, as YYYYMMDD digits (invalid dates kept as written, so typos still score):
  exact (term frequencies), one edit, day and month swapped, two edits;
- category and sex: exact (term frequencies).

Blocking uses several rules so no one field must agree: date of birth, each id, surname with
postcode, forename with the locality, both names, street number with the street. The prior
comes from deterministic rules (recall 0.7, as the project's own matcher assumes), u from
random sampling (seeded), m from EM on date of birth, both names, and the id number; then pairs
are scored and clustered at match probability 0.9, the threshold fixed in advance. The best
F1 over a grid of thresholds is reported as information only: it is tuned to the truth.
"""

import logging
import time

import duckdb
import pandas as pd
import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import DuckDBAPI, Linker, SettingsCreator, block_on

from bench.outside.data import DataSet
from bench.outside.scores import connected_components, pairwise_scores
from linkage.bounded_yaml import read_yaml

THRESHOLD = 0.9
GRID = [0.01, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 0.999]
SEED = 1
U_PAIRS = 5e6
# candidate blocking rules; those naming a field the mapping lacks are left out
BLOCKING = [("dob",), ("soc_sec_id",), ("national_id",), ("surname", "postcode"),
            ("forename", "postcode"), ("forename", "suburb"), ("forename", "city"),
            ("surname", "suburb"), ("surname", "city"), ("forename", "surname"),
            ("street_number", "address_1"), ("street_number", "street")]
# not postcode: pairs of people at one address (households) agree on every address field
# and would pull EM's "match" class towards "same address" rather than "same person"
EM_RULES = [("dob",), ("forename", "surname"), ("soc_sec_id",), ("national_id",)]
ID_FIELDS = ("soc_sec_id", "national_id")
# the fields that make one address, by role (the first present of each role's names)
ADDRESS_ROLES = {"number": ("street_number",), "street": ("address_1", "street"),
                 "locality": ("suburb", "city"), "postcode": ("postcode",)}


def prepared(data: DataSet) -> tuple[pd.DataFrame, dict[str, str]]:
    """The records as Splink reads them: ``unique_id`` and one column per mapped field
    (lower case, spaces squeezed, blanks NULL), and each field's kind."""
    mapping = read_yaml(data.mapping)
    raw = data.frame()
    out = pd.DataFrame({"unique_id": raw[mapping["record_id"]]})
    kinds = {}
    for spec in mapping["fields"]:
        values = raw[spec["column"]].str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
        if spec["kind"] == "date":
            values = ymd_digits(values, spec.get("format", "%Y-%m-%d"))
        elif spec["kind"] == "postcode":
            values = values.str.replace(" ", "", regex=False)
        out[spec["name"]] = values.where(values != "", None)
        kinds[spec["name"]] = spec["kind"]
    return out, kinds


def ymd_digits(values: pd.Series, fmt: str) -> pd.Series:
    """Dates as YYYYMMDD digits by the fields' positions in ``fmt``, valid or not (an invalid
    date from a typo is still one edit from the right one)."""
    order = [code for code in ("%Y", "%m", "%d") if code in fmt]
    if fmt in ("%Y%m%d", "%Y-%m-%d"):
        return values.str.replace("-", "", regex=False)
    parts = values.str.split(r"[/\-. ]", regex=True)
    positions = {code: fmt.replace("-", "/").replace(".", "/").split("/").index(code)
                 for code in order}

    def join(items: object) -> str:
        if not isinstance(items, list) or len(items) != 3:
            return ""
        return "".join(items[positions[c]].zfill(2) for c in ("%Y", "%m", "%d"))

    return parts.map(join)


def comparisons(kinds: dict[str, str]) -> list:
    """One comparison per mapped field, chosen by its kind (see the module's docstring); the
    parts of the address (street number, street, locality, postcode) as one comparison."""
    address = _address(kinds)
    out = [address] if address is not None else []
    for name, kind in kinds.items():
        if address is not None and name in address_parts(kinds).values():
            continue
        if name in ("forename", "surname"):
            out.append(_person_name(name, "surname" if name == "forename" else "forename",
                                    kinds))
        elif kind == "name":
            out.append(_text(name, (0.90, 0.75)))
        elif kind in ("exact", "postcode"):
            out.append(cl.CustomComparison(output_column_name=name, comparison_levels=[
                cll.NullLevel(name), cll.ExactMatchLevel(name, term_frequency_adjustments=True),
                cll.DamerauLevenshteinLevel(name, 1), cll.ElseLevel()]))
        elif kind == "date":
            out.append(_date(name))
        else:
            out.append(cl.CustomComparison(output_column_name=name, comparison_levels=[
                cll.NullLevel(name), cll.ExactMatchLevel(name, term_frequency_adjustments=True),
                cll.ElseLevel()]))
    return out


def address_parts(kinds: dict[str, str]) -> dict[str, str]:
    """The mapped field playing each role of the address (number, street, locality,
    postcode), where the mapping has one."""
    found: dict[str, str] = {}
    for role, names in ADDRESS_ROLES.items():
        name = next((n for n in names if n in kinds), None)
        if name is not None:
            found[role] = name
    return found


def _address(kinds: dict[str, str]):
    """The address as one comparison: its parts are one fact (where the person lives), so
    as separate comparisons people living at one address would count it four times over."""
    part = address_parts(kinds)
    if not {"street", "postcode"} <= set(part):
        return None
    street, postcode, number = part["street"], part["postcode"], part.get("number")
    same_number = f" AND {number}_l = {number}_r" if number else ""
    street_like = f"jaro_winkler_similarity({street}_l, {street}_r) >= 0.9"
    levels = [
        cll.CustomLevel(f"({street}_l IS NULL AND {postcode}_l IS NULL) OR "
                        f"({street}_r IS NULL AND {postcode}_r IS NULL)").configure(
            is_null_level=True),
        cll.CustomLevel(f"{street}_l = {street}_r AND {postcode}_l = {postcode}_r{same_number}",
                        label_for_charts="the same address"),
        cll.CustomLevel(f"({street_like} OR {postcode}_l = {postcode}_r){same_number}",
                        label_for_charts="same number, street or postcode alike"),
        cll.CustomLevel(f"{street_like} AND {postcode}_l = {postcode}_r",
                        label_for_charts="same street and postcode"),
        cll.CustomLevel(f"{postcode}_l = {postcode}_r", label_for_charts="same postcode"),
    ]
    if "locality" in part:
        locality = part["locality"]
        levels.append(cll.CustomLevel(f"{locality}_l = {locality}_r",
                                      label_for_charts="same suburb or town"))
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(output_column_name="address", comparison_levels=levels)


def _person_name(name: str, other: str, kinds: dict[str, str]):
    levels = [cll.NullLevel(name), cll.ExactMatchLevel(name, term_frequency_adjustments=True)]
    if other in kinds:
        # forename and surname written the wrong way round
        levels.append(cll.CustomLevel(f'"{name}_l" = "{other}_r" OR "{other}_l" = "{name}_r"',
                                      label_for_charts="swapped with the other name"))
    levels += [cll.JaroWinklerLevel(name, 0.92), cll.JaroWinklerLevel(name, 0.80),
               cll.ElseLevel()]
    return cl.CustomComparison(output_column_name=name, comparison_levels=levels)


def _text(name: str, thresholds: tuple[float, float]):
    return cl.CustomComparison(output_column_name=name, comparison_levels=[
        cll.NullLevel(name), cll.ExactMatchLevel(name, term_frequency_adjustments=True),
        *(cll.JaroWinklerLevel(name, t) for t in thresholds), cll.ElseLevel()])


def _date(name: str):
    swapped = (f'substr("{name}_l", 1, 4) = substr("{name}_r", 1, 4) AND '
               f'substr("{name}_l", 5, 2) = substr("{name}_r", 7, 2) AND '
               f'substr("{name}_l", 7, 2) = substr("{name}_r", 5, 2)')
    return cl.CustomComparison(output_column_name=name, comparison_levels=[
        cll.NullLevel(name), cll.ExactMatchLevel(name, term_frequency_adjustments=True),
        cll.DamerauLevenshteinLevel(name, 1),
        cll.CustomLevel(swapped, label_for_charts="day and month swapped"),
        cll.DamerauLevenshteinLevel(name, 2), cll.ElseLevel()])


def _rules(candidates: list[tuple[str, ...]], kinds: dict[str, str]) -> list:
    return [block_on(*rule) for rule in candidates if all(f in kinds for f in rule)]


def _deterministic(kinds: dict[str, str]) -> list[str]:
    rules = ["l.forename = r.forename AND l.surname = r.surname AND l.dob = r.dob"]
    rules += [f"l.{f} = r.{f} AND l.dob = r.dob" for f in ID_FIELDS if f in kinds]
    return rules


def run_plaintext(data: DataSet, truth: pd.DataFrame) -> dict:
    """Train, predict and cluster; pairwise scores at 0.9 and the best over ``GRID``."""
    started = time.perf_counter()
    records, kinds = prepared(data)
    con = duckdb.connect()
    con.execute("SET threads = 1")  # one thread: sums in one order, the same model each run
    con.execute("SET enable_progress_bar = false")
    db_api = DuckDBAPI(connection=con)
    settings = SettingsCreator(
        link_type="dedupe_only", comparisons=comparisons(kinds),
        blocking_rules_to_generate_predictions=_rules(BLOCKING, kinds),
        retain_intermediate_calculation_columns=False, retain_matching_columns=False)
    linker = Linker(db_api.register(records, table_name="records"), settings,
                    log_level=logging.ERROR)
    training = linker.training
    training.estimate_probability_two_random_records_match(_deterministic(kinds), recall=0.7)
    training.estimate_u_using_random_sampling(max_pairs=U_PAIRS, seed=SEED)
    for rule in _rules(EM_RULES, kinds):
        training.estimate_parameters_using_expectation_maximisation(rule)
    predictions = linker.inference.predict(threshold_match_probability=min(GRID))
    clusters = linker.clustering.cluster_pairwise_predictions_at_threshold(
        predictions, threshold_match_probability=THRESHOLD).as_pandas_dataframe()
    edges = predictions.as_pandas_dataframe()[["unique_id_l", "unique_id_r",
                                               "match_probability"]]
    seconds = time.perf_counter() - started
    at_threshold = pairwise_scores(
        clusters.rename(columns={"unique_id": "record_id"}), truth)
    by_threshold = {}
    for threshold in GRID:
        kept = edges[edges.match_probability >= threshold]
        components = connected_components(records.unique_id, kept.unique_id_l.to_numpy(),
                                          kept.unique_id_r.to_numpy())
        by_threshold[str(threshold)] = pairwise_scores(components, truth)["f1"]
    best = max(by_threshold, key=lambda t: (by_threshold[t], -float(t)))
    con.close()
    return {**at_threshold, "threshold": THRESHOLD, "seconds": round(seconds, 1),
            "best_threshold_f1": by_threshold[best], "best_threshold": float(best),
            "f1_by_threshold": by_threshold, "pairs_scored": len(edges),
            "blocking_rules": [list(r) for r in BLOCKING if all(f in kinds for f in r)],
            "comparisons": list(kinds)}
