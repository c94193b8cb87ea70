"""Project pseudonyms: each project's own person, sibling-group and household keys.

The release secret is the data custodian's: derived from its private key
(``linkage.pseudonymise.roles.release_secret``), or given as a key file with --release-key; never
kept in the spine, which the linkage unit holds. Each project's secret is
derived from it with HKDF, so two projects' extracts cannot be joined on their keys, and a
project asking again gets the same pseudonyms.
"""

import hashlib
import hmac

import pandas as pd
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = {"person": "R", "sibling_group": "G", "household": "A"}


def project_secret(release: bytes, project: str) -> bytes:
    """The project's own secret: HKDF of the release secret, bound to the project id."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"linkage project pseudonyms|" + project.encode()).derive(release)


def pseudonyms(secret: bytes, kind: str, keys: pd.Series) -> pd.Series:
    """The project's pseudonym for each spine key (person, sibling_group or household)."""
    prefix = PREFIX[kind]
    mapping = {key: prefix + hmac.new(secret, f"{kind}|{key}".encode(),
                                      hashlib.sha256).hexdigest()[:20]
               for key in keys.dropna().unique()}
    return keys.map(mapping)
