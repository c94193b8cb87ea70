"""Keyed Bloom filters of name bigrams, so that name similarity (Dice) survives hashing.

Each distinct bigram is hashed once with the name field's subkey into ``hashes`` bit positions
(double hashing on the HMAC); each distinct name sets the bits of its bigrams. The filters are
built as NumPy bit arrays for many names at once, never one bigram at a time in Python.

Salted filters (``salts``, one text per record: the canonical date of birth) hash each bigram
with its record's salt (a keyed pseudorandom function of salt and bigram), so one name has
unrelated bit patterns
under different salts. Equal filters then mean the same name and the same salt: a filter is
about as frequent as one person's records, not as the name, so frequency alignment (the most
common filter is the most common name) fails, and each salt's filters are too few to mine for
bigram patterns. Each distinct (salt, bigram) pair is hashed once, all in one AES call.

Hardening ``balanced`` appends the filter's complement and shuffles the bits with a keyed
permutation: every filter then has the same number of bits set, which hides name length.
"""

import hashlib
import hmac
import re

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

PAD = "_"
CHUNK = 1 << 16  # filters built at once: bounds the bit matrix to 64 MB at 1,024 bits


def normalise_name(names: pd.Series, digits: bool = False) -> pd.Series:
    """Upper case letters only (and digits, for free text such as a street: ``digits``),
    single spaces; accents and punctuation dropped."""
    text = names.fillna("").astype(str).str.normalize("NFKD").str.encode(
        "ascii", errors="ignore").str.decode("ascii").str.upper()
    unwanted = r"[^A-Z0-9 ]+" if digits else r"[^A-Z ]+"
    return text.str.replace(unwanted, "", regex=True).str.replace(r"\s+", " ",
                                                                 regex=True).str.strip()


def bigrams(name: str) -> list[str]:
    padded = PAD + re.sub(" ", PAD, name) + PAD
    return [padded[i:i + 2] for i in range(len(padded) - 1)]


def bloom_filters(names: pd.Series, key: bytes, length: int, hashes: int,
                  hardening: str = "none", salts: pd.Series | None = None,
                  digits: bool = False) -> pd.Series:
    """One filter (bytes) per name; None where the name is empty.

    With ``salts`` (text aligned with ``names``) each filter is salted by its record's salt,
    and a record with no salt ('' or missing) gets no filter: its name could be compared
    with no other (see the module docstring).
    """
    if length % 8:
        raise ValueError("Bloom filter length must be a multiple of 8")
    if hardening not in ("none", "balanced"):
        raise ValueError(f"unknown Bloom filter hardening {hardening!r}")
    name_codes, name_uniques = _normal_names(names, digits)
    salted = salts is not None
    salt_codes, salt_uniques = pd.factorize(
        (salts if salted else pd.Series("", index=names.index)).fillna("").astype(object))
    # each distinct (name, salt) gets one filter; none without a name or (salted) a salt
    pair_codes, pair_of_record = np.unique(
        name_codes.astype(np.int64) * len(salt_uniques) + salt_codes, return_inverse=True)
    pair_name, pair_salt = pair_codes // len(salt_uniques), pair_codes % len(salt_uniques)
    usable = np.array([n != "" for n in name_uniques], dtype=bool)[pair_name]
    if salted:
        usable &= np.array([s != "" for s in salt_uniques], dtype=bool)[pair_salt]
    filters = np.full(len(pair_codes), None, dtype=object)
    kept = np.flatnonzero(usable)
    grams = _vocabulary(name_uniques)
    salt_texts = [str(s) for s in salt_uniques] if salted else None
    for start in range(0, len(kept), CHUNK):
        rows = kept[start:start + CHUNK]
        bits = _filter_bits(key, grams, pair_name[rows], pair_salt[rows], salt_texts, length,
                            hashes)
        if hardening == "balanced":
            bits = _balanced(bits, key)
        filters[rows] = [row.tobytes() for row in np.packbits(bits, axis=1)]
    return pd.Series(filters[pair_of_record.ravel()], index=names.index, dtype=object)


def _normal_names(names: pd.Series, digits: bool = False) -> tuple[np.ndarray, list[str]]:
    """Each record's code into the distinct normalised names (normalised once each)."""
    raw_codes, raw_uniques = pd.factorize(names.fillna("").astype(object), sort=False)
    normal = normalise_name(pd.Series(raw_uniques, dtype=object), digits)
    codes, uniques = pd.factorize(normal, sort=False)
    return codes[raw_codes], list(uniques)


def _vocabulary(names: list[str]) -> tuple[list[np.ndarray], list[str]]:
    """Each distinct name's bigrams as ids into the sorted distinct bigrams."""
    lists = [bigrams(name) if name else [] for name in names]
    vocabulary = sorted({gram for grams in lists for gram in grams})
    index = {gram: i for i, gram in enumerate(vocabulary)}
    return [np.array([index[g] for g in grams], dtype=np.int64) for grams in lists], vocabulary


def _filter_bits(key: bytes, grams: tuple[list[np.ndarray], list[str]], name_ids: np.ndarray,
                 salt_ids: np.ndarray, salts: list[str], length: int, hashes: int
                 ) -> np.ndarray:
    """The bits (rows x length) of each (name, salt); unsalted where ``salts`` is None."""
    gram_ids, vocabulary = grams
    counts = np.array([len(gram_ids[i]) for i in name_ids], dtype=np.int64)
    owner = np.repeat(np.arange(len(name_ids)), counts)
    bits = np.zeros((len(name_ids), length), dtype=bool)
    if not len(owner):
        return bits
    occurrence = np.concatenate([gram_ids[i] for i in name_ids])
    if salts is not None:
        occurrence = occurrence + np.repeat(salt_ids.astype(np.int64), counts) * len(vocabulary)
    distinct, which = np.unique(occurrence, return_inverse=True)
    if salts is None:
        words = _mac_words(key, [vocabulary[code].encode() for code in distinct.tolist()])
    else:
        words = _salted_words(key, salts, vocabulary, distinct)
    bits[np.repeat(owner, hashes), _positions(words, length, hashes)[which.ravel()].ravel()] = True
    return bits


def _mac_words(key: bytes, messages: list[bytes]) -> np.ndarray:
    """Two 64-bit words per message: the first 16 bytes of its HMAC-SHA256."""
    digests = b"".join(hmac.digest(key, message, hashlib.sha256)[:16] for message in messages)
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64).reshape(-1, 2)


def _salted_words(key: bytes, salts: list[str], vocabulary: list[str], codes: np.ndarray
                  ) -> np.ndarray:
    """Two 64-bit words per distinct (salt, bigram), ``codes`` = salt * len(vocabulary) +
    bigram: AES-256 under a key derived from the subkey, applied to one 16-byte block per pair
    (the salt's 64-bit HMAC, the bigram's two letters, zeros). The blocks are distinct, so
    AES is a keyed pseudorandom function of them; it runs over all pairs in one call, where
    an HMAC each would be a Python call per pair."""
    salt_macs = _mac_words(key, [b"salt|" + salt.encode() for salt in salts])[:, 0]
    letters = np.frombuffer("".join(vocabulary).encode("ascii"), dtype=np.uint8).reshape(-1, 2)
    blocks = np.zeros((len(codes), 16), dtype=np.uint8)
    blocks[:, :8] = salt_macs[codes // len(vocabulary)].astype(">u8").view(np.uint8).reshape(
        -1, 8)
    blocks[:, 8:10] = letters[codes % len(vocabulary)]
    aes_key = hmac.digest(key, b"bloom-salted-bigram-aes", hashlib.sha256)
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()
    out = encryptor.update(blocks.tobytes()) + encryptor.finalize()
    return np.frombuffer(out, dtype=">u8").astype(np.uint64).reshape(-1, 2)


def _positions(words: np.ndarray, length: int, hashes: int) -> np.ndarray:
    """Bit positions (rows x hashes) by double hashing on each row's two 64-bit words."""
    first, second = words[:, :1], words[:, 1:] | np.uint64(1)
    steps = np.arange(hashes, dtype=np.uint64)[None, :]
    with np.errstate(over="ignore"):
        return ((first + steps * second) % np.uint64(length)).astype(np.int64)


def _balanced(bits: np.ndarray, key: bytes) -> np.ndarray:
    """Filter and complement, bits shuffled by a permutation seeded from the key."""
    doubled = np.concatenate([bits, ~bits], axis=1)
    seed = int.from_bytes(hmac.digest(key, b"balanced-permutation", hashlib.sha256)[:8], "big")
    order = np.random.default_rng(seed).permutation(doubled.shape[1])
    return doubled[:, order]


def dice(a: bytes, b: bytes) -> float:
    """Dice coefficient of two filters (for tests and diagnostics; linkage does this in SQL)."""
    x = np.unpackbits(np.frombuffer(a, dtype=np.uint8))
    y = np.unpackbits(np.frombuffer(b, dtype=np.uint8))
    total = x.sum() + y.sum()
    return float(2 * (x & y).sum() / total) if total else 0.0
