"""The linkage key: generation, loading (file or environment), fingerprint and per-field subkeys.

The key is 256 random bits, written as 64 hex characters. It is read from a file that only its
owner may read, or from the environment variable LINKAGE_KEY; never from code or a command
line argument. Each token family gets its own subkey (HKDF-SHA256), so tokens of one field
cannot be compared with another's.
"""

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from linkage.atomic import write_atomically

KEY_BYTES = 32
KEY_ENV = "LINKAGE_KEY"
FINGERPRINT_LABEL = b"linkage/key-fingerprint/v1"


class KeyError_(Exception):
    """A key cannot be used; the message never contains key material."""


def generate_key_file(path: Path) -> None:
    """Write a new random key to ``path`` with mode 0600; refuse to overwrite."""
    _write_secret(path, secrets.token_hex(KEY_BYTES) + "\n")


def generate_keypair(private_path: Path, public_path: Path) -> None:
    """An X25519 key pair for sealing bundle parts to their recipient (the linkage unit or
    the data custodian); private key mode 0600."""
    write_key_pair(X25519PrivateKey.generate(), private_path, public_path)


def write_key_pair(private, private_path: Path, public_path: Path) -> None:
    """A private key (PKCS8 PEM, mode 0600) and its public key (SubjectPublicKeyInfo PEM);
    neither file is ever overwritten, and nothing is written if either exists, or if either
    cannot be written whole (a full disk leaves neither)."""
    if public_path.exists():
        raise KeyError_(f"{public_path}: exists already; a key is never overwritten")
    if private_path.absolute() == public_path.absolute():
        raise KeyError_(f"{private_path}: give different files for the private and public keys")
    private_pem = private.private_bytes(serialization.Encoding.PEM,
                                        serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    public_pem = private.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
    _write_secret(private_path, private_pem.decode())
    try:
        _write_new(public_path, public_pem, 0o644)
    except BaseException:
        private_path.unlink()  # a private key without its public half is of no use
        raise


def _write_secret(path: Path, text: str) -> None:
    _write_new(path, text.encode("ascii"), 0o600)


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Write a key file whole, with ``mode``, never over an existing file."""
    try:
        write_atomically(path, data, mode=mode, overwrite=False)
    except FileExistsError:
        raise KeyError_(f"{path}: exists already; a key is never overwritten") from None


def read_secret_file(path: Path, wanted: str = "key file") -> bytes:
    """A secret file's bytes, refused if anyone but its owner can read it. ``wanted`` names
    the key asked for (such as "linkage key"), for the message when ``path`` is something
    else: a folder, or a public key (readable by all, but no chmod makes it the right key)."""
    if path.is_dir():
        raise KeyError_(f"{path}: is a folder; give the {wanted} file")
    try:
        mode = path.stat().st_mode
    except OSError:
        raise KeyError_(f"{path}: no such key file (the {wanted})") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        if is_public_key(path):
            raise KeyError_(f"{path}: is a public key; give the {wanted}")
        raise KeyError_(f"{path}: readable by others (mode {stat.S_IMODE(mode):o}); "
                        "run chmod 600 on it")
    return path.read_bytes()


def is_public_key(path: Path) -> bool:
    """Whether ``path`` holds a PEM public key (of any kind)."""
    try:
        serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError, UnsupportedAlgorithm):
        return False
    return True


def load_key(path: Path | None, wanted: str = "linkage key") -> bytes:
    """The linkage key from ``path``, or from LINKAGE_KEY when no path is given (``wanted``
    names a key of the same form made for another use, such as a release key)."""
    if path is not None:
        text = read_secret_file(path, wanted).decode("ascii", errors="replace").strip()
        where = str(path)
    elif os.environ.get(KEY_ENV):
        text, where = os.environ[KEY_ENV].strip(), KEY_ENV
    else:
        raise KeyError_(f"no linkage key: give --key FILE or set {KEY_ENV}")
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyError_(f"{where}: is not a linkage key (64 hex characters)") from None
    if len(key) != KEY_BYTES:
        raise KeyError_(f"{where}: is not a linkage key (64 hex characters)")
    return key


def fingerprint(key: bytes) -> str:
    """A keyed, one-way fingerprint: equal keys give equal fingerprints, and it reveals nothing."""
    return hmac.new(key, FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:32]


def subkey(key: bytes, family: str) -> bytes:
    """The key of one token family (HKDF-SHA256 with the family's name as context)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None,
                info=b"linkage/token/v1/" + family.encode()).derive(key)
