"""Name pools drawn once from Faker's en_GB lists, sampled with a Zipf-like skew."""

import numpy as np
from faker.providers.person.en_GB import Provider

from synthetic.randomness import zipf_weights


class NamePools:
    """Forenames by sex and surnames, each with skewed weights so that common names are common."""

    def __init__(self, forename_exponent: float, surname_exponent: float):
        self.female = np.array(sorted(set(Provider.first_names_female)), dtype=object)
        self.male = np.array(sorted(set(Provider.first_names_male)), dtype=object)
        surnames = sorted(Provider.last_names.items(), key=lambda kv: (-kv[1], kv[0]))
        self.surnames = np.array([name for name, _ in surnames], dtype=object)
        self.forename_exponent = forename_exponent
        self.surname_exponent = surname_exponent

    def _draw(self, rng: np.random.Generator, pool: np.ndarray, n: int) -> np.ndarray:
        # a random (seeded) rank order, so the skew does not follow the alphabet
        order = rng.permutation(len(pool))
        picks = rng.choice(len(pool), size=n, p=zipf_weights(len(pool), self.forename_exponent))
        return pool[order][picks]

    def forenames(self, rng: np.random.Generator, sex: np.ndarray) -> np.ndarray:
        out = np.empty(len(sex), dtype=object)
        female = sex == "F"
        out[female] = self._draw(rng, self.female, int(female.sum()))
        out[~female] = self._draw(rng, self.male, int((~female).sum()))
        return out

    def surnames_for(self, rng: np.random.Generator, n: int) -> np.ndarray:
        picks = rng.choice(len(self.surnames), size=n,
                           p=zipf_weights(len(self.surnames), self.surname_exponent))
        return self.surnames[picks]
