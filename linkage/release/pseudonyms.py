"""Project pseudonyms: each project's own person, sibling-group and household keys.

The release secret is made (random) the first time a spine releases anything and is kept in
the spine, or given as a key file with --release-key. Each project's secret is derived from it
with HKDF, so two projects' extracts cannot be joined on their keys, and a project asking again
gets the same pseudonyms.
"""

import hashlib
import hmac
import secrets

import pandas as pd
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = {"person": "R", "sibling_group": "G", "household": "A"}


def release_secret(con) -> bytes:
    """The spine's release secret, made on first use and kept in ``spine_meta``."""
    rows = con.execute("SELECT value FROM spine_meta WHERE name = 'release_secret'").fetchall()
    if rows:
        return bytes.fromhex(rows[0][0])
    value = secrets.token_bytes(32)
    con.execute("INSERT INTO spine_meta VALUES ('release_secret', ?)", [value.hex()])
    return value


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
