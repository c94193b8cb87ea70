"""Unique Pupil Numbers built in bulk, with their check letters (DOMAIN.md section 6)."""

import numpy as np

from synthetic.reference import UPN_CHECK_ALPHABET

WEIGHTS = np.arange(2, 14)
_LETTER_VALUE = {letter: index for index, letter in enumerate(UPN_CHECK_ALPHABET)}


def check_letters(bodies: np.ndarray) -> np.ndarray:
    """The check letter for each 12-character UPN body (characters 2 to 13).

    Digits count as their value; a final letter (a temporary UPN) counts as its index in the
    check alphabet.
    """
    if len(bodies) == 0:
        return np.array([], dtype=object)
    codes = np.frombuffer("".join(bodies).encode("ascii"), dtype=np.uint8).reshape(-1, 12)
    values = codes.astype(np.int64) - ord("0")
    last = codes[:, 11]
    is_letter = last >= ord("A")
    if is_letter.any():
        lookup = np.zeros(256, dtype=np.int64)
        for letter, index in _LETTER_VALUE.items():
            lookup[ord(letter)] = index
        values[is_letter, 11] = lookup[last[is_letter]]
    remainder = (values * WEIGHTS).sum(axis=1) % 23
    return np.array(list(UPN_CHECK_ALPHABET), dtype=object)[remainder]


def make_upns(la: np.ndarray, estab: np.ndarray, year: np.ndarray, serial: np.ndarray,
              temporary: np.ndarray, temp_letter: np.ndarray) -> np.ndarray:
    """UPNs from issuing LA number, establishment, two-digit year of issue and serial.

    A temporary UPN has a letter in place of the serial's last digit.
    """
    serial_text = np.char.zfill(serial.astype(str), 3).astype(object)
    temp_serial = np.char.add(np.char.zfill((serial % 100).astype(str), 2), temp_letter)
    serial_text = np.where(temporary, temp_serial.astype(object), serial_text)
    body = (np.char.zfill(la.astype(str), 3).astype(object)
            + np.char.zfill(estab.astype(str), 4).astype(object)
            + np.char.zfill((year % 100).astype(str), 2).astype(object)
            + serial_text)
    return check_letters(body) + body


def wrong_check_letter(upns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same UPNs with a different, wrong check letter (an injected recording error)."""
    if len(upns) == 0:
        return upns
    alphabet = np.array(list(UPN_CHECK_ALPHABET), dtype=object)
    current = np.array([_LETTER_VALUE[u[0]] for u in upns])
    shifted = (current + rng.integers(1, 23, len(upns))) % 23
    return alphabet[shifted] + np.array([u[1:] for u in upns], dtype=object)
