"""Local authorities, adoption agencies, schools and postcodes of the synthetic England."""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from synthetic.reference import LA_CODES, POSTCODE_AREAS, POSTCODE_UNIT_LETTERS

DISTRICTS_PER_LA = 20
UNITS_PER_SECTOR = len(POSTCODE_UNIT_LETTERS) ** 2


@dataclass
class Geography:
    """The LAs in the world (indexed 0..n-1), their agencies and their schools."""

    la_codes: np.ndarray          # LA number per LA index
    child_id_format: np.ndarray   # the LA's case-system id template
    agencies: pd.DataFrame        # agency_code, folder, kind (la/regional/voluntary), la_index
    la_agency: np.ndarray         # the adoption agency (row of agencies) serving each LA
    primary_schools: np.ndarray   # number of primary schools per LA
    secondary_schools: np.ndarray

    @property
    def n_las(self) -> int:
        return len(self.la_codes)

    def random_postcodes(self, rng: np.random.Generator, la_index: np.ndarray) -> np.ndarray:
        """New postcodes (as integer codes) inside the given LAs."""
        n = len(la_index)
        district = rng.integers(0, DISTRICTS_PER_LA, n)
        sector = rng.integers(0, 10, n)
        unit = rng.integers(0, UNITS_PER_SECTOR, n)
        return ((la_index.astype(np.int64) * DISTRICTS_PER_LA + district) * 10 + sector) \
            * UNITS_PER_SECTOR + unit

    def postcode_la(self, codes: np.ndarray) -> np.ndarray:
        return codes // (DISTRICTS_PER_LA * 10 * UNITS_PER_SECTOR)

    def postcode_text(self, codes: np.ndarray) -> np.ndarray:
        """Format integer postcode codes as real-looking postcodes, such as 'LS12 3AB'."""
        unique, inverse = np.unique(codes, return_inverse=True)
        letters = POSTCODE_UNIT_LETTERS
        text = []
        for code in unique.tolist():
            code, unit = divmod(code, UNITS_PER_SECTOR)
            code, sector = divmod(code, 10)
            la_index, district = divmod(code, DISTRICTS_PER_LA)
            area_index = la_index % len(POSTCODE_AREAS)
            district_number = district + 1 + DISTRICTS_PER_LA * (la_index // len(POSTCODE_AREAS))
            inward = f"{sector}{letters[unit // len(letters)]}{letters[unit % len(letters)]}"
            text.append(f"{POSTCODE_AREAS[area_index]}{district_number} {inward}")
        return np.array(text, dtype=object)[inverse]


def build_geography(rng: np.random.Generator, people: int, config: dict) -> Geography:
    """Choose the LAs (scaled to the population), group them into agencies and size schools."""
    geo = config["geography"]
    n_las = int(np.clip(round(people / geo["people_per_la"]), geo["min_las"], len(LA_CODES)))
    la_codes = np.sort(rng.choice(LA_CODES, size=n_las, replace=False))
    formats = np.array(geo["child_id_formats"], dtype=object)
    child_id_format = formats[rng.integers(0, len(formats), n_las)]

    agencies, la_agency = _agencies(rng, la_codes, geo)
    cohort = people / n_las / 24  # children per birth year per LA (24 birth years in the world)
    primary = np.full(n_las, max(1, round(cohort / geo["pupils_per_school_year"])))
    secondary = np.maximum(1, primary // 5)
    return Geography(la_codes, child_id_format, agencies, la_agency, primary, secondary)


def _agencies(rng: np.random.Generator, la_codes: np.ndarray, geo: dict):
    n_las = len(la_codes)
    own = rng.random(n_las) < geo["la_own_adoption_share"]
    regional_las = np.flatnonzero(~own)
    n_regional = int(np.ceil(len(regional_las) / geo["las_per_regional_agency"]))
    rows = [
        {"agency_code": f"{code:03d}", "folder": f"la_{code:03d}", "kind": "la", "la_index": i}
        for i, code in enumerate(la_codes) if own[i]
    ]
    rows += [
        {"agency_code": f"RAA{k + 1:02d}", "folder": f"raa{k + 1:02d}", "kind": "regional",
         "la_index": -1}
        for k in range(n_regional)
    ]
    n_voluntary = max(1, round(n_las * geo["voluntary_agencies_per_la"]))
    rows += [
        {"agency_code": f"VAA{k + 1:02d}", "folder": f"vaa{k + 1:02d}", "kind": "voluntary",
         "la_index": -1}
        for k in range(n_voluntary)
    ]
    agencies = pd.DataFrame(rows)
    la_agency = np.empty(n_las, dtype=int)
    for i in np.flatnonzero(own):
        la_agency[i] = int(np.flatnonzero((agencies.kind == "la") & (agencies.la_index == i))[0])
    regional_rows = np.flatnonzero(agencies.kind == "regional")
    for k, i in enumerate(regional_las):
        la_agency[i] = regional_rows[k // geo["las_per_regional_agency"]]
    return agencies, la_agency
