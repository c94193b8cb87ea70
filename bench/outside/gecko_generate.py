"""A deduplication data set of people, generated and corrupted by gecko (gecko-syndata 0.6).

Runs in gecko's own virtualenv (gecko pins numpy < 2 and pandas < 3, the project needs
numpy >= 2 and pandas >= 3), so it imports nothing from the project:

    /work/.venv-gecko/bin/python bench/outside/gecko_generate.py --tables DIR --out FILE.csv

The tables come from ``gecko_tables.py`` (Faker's name and address lists). Each person is
generated once from the tables; each gets 0 to 4 duplicates; every error in a duplicate is
made by gecko's own mutators: keyboard typos, phonetic spelling errors, inserted, deleted
and transposed characters, given and family names swapped, date-of-birth offsets, day and
month swapped, street types abbreviated, a move to another address, changed sex, missing
values. Originals get only missing values. One seed drives every random choice, so the same
seed writes the same file. The ``person_id`` column is the truth.
"""

import argparse
import string
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from gecko import GeckoWarning, generator, mutator

DOB_FORMAT = "%d/%m/%Y"
# share of persons with 0, 1, 2, 3, 4 duplicates (FEBRL-like: most have few)
DUPLICATES = ([0, 1, 2, 3, 4], [0.45, 0.25, 0.15, 0.10, 0.05])


def generate(tables: Path, people: int, seed: int) -> pd.DataFrame:
    """The records (originals and corrupted duplicates), shuffled, with ``person_id``."""
    rng = np.random.default_rng(seed)
    persons = generator.to_data_frame([
        (("given_name", "sex"), generator.from_multicolumn_frequency_table(
            tables / "given_names.csv", value_columns=["given_name", "sex"],
            freq_column="count", rng=rng)),
        ("family_name", generator.from_frequency_table(
            tables / "family_names.csv", value_column="family_name", freq_column="count",
            rng=rng)),
        ("dob", generator.from_datetime_range("1930-01-01", "2012-12-31", DOB_FORMAT, "D",
                                              rng=rng)),
        (("street_number", "street", "city", "postcode"), _addresses(tables, rng)),
        ("national_id", generator.from_uniform_distribution(100_000_000, 999_999_999,
                                                            precision=0, rng=rng)),
    ], people)
    persons.insert(0, "person_id", [f"p{i:05d}" for i in range(people)])

    copies = rng.choice(DUPLICATES[0], size=people, p=DUPLICATES[1])
    originals = _mutate(persons, _original_errors(rng))
    duplicates = persons.loc[persons.index.repeat(copies)].reset_index(drop=True)
    duplicates = _mutate(duplicates, _duplicate_errors(tables, rng))
    records = pd.concat([originals.assign(kind="org"), duplicates.assign(kind="dup")],
                        ignore_index=True)
    records = records.iloc[rng.permutation(len(records))].reset_index(drop=True)
    records.insert(0, "rec_id", [f"g{i:05d}" for i in range(len(records))])
    return records.drop(columns="kind")


def _addresses(tables: Path, rng: np.random.Generator):
    return generator.from_multicolumn_frequency_table(
        tables / "addresses.csv", value_columns=["street_number", "street", "city", "postcode"],
        freq_column="count", rng=rng)


def _mutate(frame: pd.DataFrame, spec: list) -> pd.DataFrame:
    with warnings.catch_warnings():
        # gecko warns when a mutator could change fewer rows than asked (a name too short
        # for a transposition, no phonetic rule applying): expected, not a fault
        warnings.simplefilter("ignore", GeckoWarning)
        return mutator.mutate_data_frame(frame, spec)


def _original_errors(rng: np.random.Generator) -> list:
    missing = mutator.with_missing_value("", rng=rng)
    return [("national_id", (0.10, missing)), ("street_number", (0.03, missing)),
            ("sex", (0.02, missing)), ("postcode", (0.02, missing))]


def _swap_day_month(value: str) -> str:
    """A date written month first: 07/03/1990 for 3 July (invalid when the day is over 12)."""
    parts = value.split("/")
    return "/".join([parts[1], parts[0], *parts[2:]]) if len(parts) == 3 else value


def _duplicate_errors(tables: Path, rng: np.random.Generator) -> list:
    keymap = tables / "keymap.xml"
    letters = mutator.with_cldr_keymap_file(keymap, charset=string.ascii_lowercase, rng=rng)
    digits = mutator.with_cldr_keymap_file(keymap, charset=string.digits, rng=rng)
    phonetic = mutator.with_phonetic_replacement_table(
        tables / "phonetic.csv", source_column="source", target_column="target",
        flags_column="flags", rng=rng)
    missing = mutator.with_missing_value("", rng=rng)
    insert = mutator.with_insert(string.ascii_lowercase, rng=rng)
    delete = mutator.with_delete(rng=rng)
    transpose = mutator.with_transpose(rng=rng)

    def name_errors(scale: float) -> list:
        return [(0.06 * scale, letters), (0.06 * scale, phonetic), (0.02 * scale, insert),
                (0.02 * scale, delete), (0.02 * scale, transpose), (0.03, missing)]

    return [
        ("given_name", name_errors(1.0)),
        ("family_name", name_errors(1.0)),
        (("given_name", "family_name"), (0.03, mutator.with_permute(rng=rng))),
        ("dob", [(0.05, mutator.with_datetime_offset(3, "d", DOB_FORMAT,
                                                     prevent_wraparound=True, rng=rng)),
                 (0.03, mutator.with_function(_swap_day_month, rng=rng)),
                 (0.03, digits), (0.03, missing)]),
        ("sex", [(0.02, mutator.with_categorical_values(tables / "sex.csv", value_column="sex",
                                                        rng=rng)),
                 (0.04, missing)]),
        # a move: the whole address replaced by another from the table
        (("street_number", "street", "city", "postcode"),
         (0.08, mutator.with_generator(_addresses(tables, rng), "replace", rng=rng))),
        ("street_number", [(0.04, digits), (0.05, missing)]),
        ("street", [(0.10, mutator.with_replacement_table(
            tables / "street_types.csv", source_column="source", target_column="target",
            rng=rng)), (0.04, letters), (0.02, transpose), (0.04, missing)]),
        ("city", [(0.04, letters), (0.03, phonetic), (0.05, missing)]),
        ("postcode", [(0.04, mutator.with_substitute(string.ascii_uppercase + string.digits,
                                                     rng=rng)),
                      (0.05, missing)]),
        ("national_id", [(0.05, digits), (0.03, transpose), (0.15, missing)]),
    ]


def main() -> None:
    """Write the data set to --out (CSV)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--people", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    records = generate(args.tables, args.people, args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    records.to_csv(args.out, index=False)
    print(f"{len(records)} records of {records.person_id.nunique()} people -> {args.out}")


if __name__ == "__main__":
    main()
