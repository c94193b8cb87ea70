"""Value tables for gecko, built from the name and address lists inside the Faker package.

gecko generates values from frequency tables and corrupts them with keyboard maps and phonetic
rules, but ships none of them, and nothing may be downloaded here. So every table is made from
data that ships inside a pip package, Faker (already a dependency of the project):

- ``given_names.csv`` (given_name, sex, count): Faker's en_GB male and female first names,
  which Faker lists commonest first (ONS) without counts; the count falls with the rank as
  Zipf's law, 10,000 / rank, so common names are common;
- ``family_names.csv`` (family_name, count): Faker's en_GB surnames with Faker's own weights
  (per cent of people), scaled to counts;
- ``addresses.csv`` (street_number, street, city, postcode, count): addresses drawn by a
  seeded en_GB Faker; each street lies in one town with one postcode district, so people
  at nearby addresses share a town and a district as they would;
- ``sex.csv``: the two codes, for gecko's categorical mutator;
- ``keymap.xml``: a QWERTY keyboard (digits and lower-case letters) in the CLDR keymap format
  that gecko reads, written here key by key, for typing errors;
- ``phonetic.csv`` (source, target, flags): English spelling confusions (ph/f, ck/k, mc/mac,
  doubled letters...), written here, for phonetic errors;
- ``street_types.csv`` (source, target): street type words and their abbreviations.

Run with the project's virtualenv (it has Faker); gecko itself runs in its own (see
``gecko_generate.py``), since it pins numpy < 2 and pandas < 3.
"""

from pathlib import Path

import pandas as pd
from faker import Faker
from faker.providers.address.en_GB import Provider as Address
from faker.providers.person.en_GB import Provider as Person

TOWNS = 120
STREETS_PER_TOWN = 12
ADDRESSES_PER_STREET = 4

# rows of a QWERTY keyboard by their CLDR (ISO) row letter: E digits, D/C/B letters
KEYBOARD_ROWS = {"E": "1234567890", "D": "qwertyuiop", "C": "asdfghjkl", "B": "zxcvbnm"}

PHONETIC_RULES = [
    # source, target, flags (^ start, _ middle, $ end; empty: anywhere)
    ("ph", "f", ""), ("f", "ph", "^"), ("ck", "k", ""), ("c", "k", "^"), ("k", "c", "^"),
    ("ee", "ea", "_"), ("ea", "ee", "_"), ("ie", "y", "$"), ("y", "ie", "$"),
    ("ey", "y", "$"), ("ou", "ow", "_"), ("ow", "ou", "_"), ("th", "t", ""),
    ("mc", "mac", "^"), ("mac", "mc", "^"), ("ll", "l", ""), ("tt", "t", ""), ("nn", "n", ""),
    ("ss", "s", ""), ("s", "z", "_"), ("z", "s", ""), ("ai", "ay", ""), ("ay", "ai", ""),
    ("dge", "ge", ""), ("gh", "g", ""), ("wr", "r", "^"), ("kn", "n", "^"), ("i", "y", "_"),
    ("y", "i", "_"), ("er", "a", "$"), ("our", "or", "$"), ("sh", "sch", ""),
]

STREET_TYPES = [
    ("street", "st"), ("road", "rd"), ("avenue", "ave"), ("lane", "ln"), ("drive", "dr"),
    ("close", "cl"), ("court", "ct"), ("place", "pl"), ("crescent", "cres"),
    ("gardens", "gdns"), ("terrace", "terr"), ("grove", "gr"), ("square", "sq"),
]


def make_tables(folder: Path, seed: int = 20) -> Path:
    """Write every table gecko needs into ``folder`` (the same files for the same seed)."""
    folder.mkdir(parents=True, exist_ok=True)
    _given_names().to_csv(folder / "given_names.csv", index=False)
    _family_names().to_csv(folder / "family_names.csv", index=False)
    _addresses(seed).to_csv(folder / "addresses.csv", index=False)
    pd.DataFrame({"sex": ["m", "f"]}).to_csv(folder / "sex.csv", index=False)
    pd.DataFrame(PHONETIC_RULES, columns=["source", "target", "flags"]).to_csv(
        folder / "phonetic.csv", index=False)
    pd.DataFrame(STREET_TYPES, columns=["source", "target"]).to_csv(
        folder / "street_types.csv", index=False)
    (folder / "keymap.xml").write_text(keymap_xml(), encoding="utf-8")
    return folder


def _given_names() -> pd.DataFrame:
    frames = []
    for sex, names in (("m", Person.first_names_male), ("f", Person.first_names_female)):
        unique = list(dict.fromkeys(n.lower() for n in names))
        frames.append(pd.DataFrame({"given_name": unique, "sex": sex,
                                    "count": [round(10_000 / rank)
                                              for rank in range(1, len(unique) + 1)]}))
    return pd.concat(frames, ignore_index=True)


def _family_names() -> pd.DataFrame:
    weights: dict[str, float] = {}
    for name, weight in Person.last_names.items():
        key = name.lower()
        weights[key] = weights.get(key, 0.0) + weight
    # Faker's weights are per cent with two decimals: times 100 gives whole counts >= 1
    return pd.DataFrame({"family_name": list(weights),
                         "count": [max(1, round(w * 100)) for w in weights.values()]})


def _addresses(seed: int) -> pd.DataFrame:
    fake = Faker("en_GB")
    fake.seed_instance(seed)
    rows = []
    for _ in range(TOWNS):
        town = fake.city().lower()
        district = fake.postcode().split(" ")[0]
        for _ in range(STREETS_PER_TOWN):
            street = f"{fake.last_name().lower()} {fake.random_element(Address.street_suffixes)}"
            street = street.lower()
            for _ in range(ADDRESSES_PER_STREET):
                inward = fake.postcode().split(" ")[-1]
                rows.append((str(fake.random_int(1, 250)), street, town,
                             f"{district} {inward}"))
    frame = pd.DataFrame(rows, columns=["street_number", "street", "city", "postcode"])
    frame = frame.drop_duplicates(["street_number", "street", "city"]).reset_index(drop=True)
    return frame.assign(count=1)


def keymap_xml() -> str:
    """A QWERTY keyboard in the CLDR keymap format: one ``map`` element per key, by ISO
    position (row letter, column number), unshifted only, so typos stay lower case."""
    maps = [f'    <map iso="{row}{column:02d}" to="{char}"/>'
            for row, keys in KEYBOARD_ROWS.items()
            for column, char in enumerate(keys, start=1)]
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<keyboard locale="en-t-k0-bench">\n'
            "  <keyMap>\n" + "\n".join(maps) + "\n  </keyMap>\n</keyboard>\n")
