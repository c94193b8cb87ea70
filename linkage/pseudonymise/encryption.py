"""Encrypting a bundle to the linkage unit, and opening it there.

Hybrid encryption with `cryptography`: an ephemeral X25519 key agreement with the linkage unit's
public key, HKDF-SHA256 to a 256-bit key, and AES-256-GCM over a tar of the bundle folder. The
header (format, ephemeral public key, nonce) is authenticated too, so any change to the file,
or a truncation, is refused.
"""

import io
import os
import tarfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from linkage.pseudonymise.keys import KeyError_, read_secret_file

MAGIC = b"LINKAGE-BUNDLE-v1\n"
PUBLIC_BYTES = 32
NONCE_BYTES = 12
BUNDLE_FILES = ("manifest.json", "tokens.parquet", "content.parquet")


class EncryptionError(Exception):
    """An encrypted bundle cannot be opened; the message names the file."""


def _derive(shared: bytes, ephemeral_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public,
                info=b"linkage/bundle-encryption/v1").derive(shared)


def load_public_key(path: Path) -> X25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError):
        raise KeyError_(f"{path}: is not a linkage unit public key (PEM, X25519)") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyError_(f"{path}: is not an X25519 public key")
    return key


def load_private_key(path: Path) -> X25519PrivateKey:
    data = read_secret_file(path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyError_(f"{path}: is not a linkage unit private key (PEM, X25519)") from None
    if not isinstance(key, X25519PrivateKey):
        raise KeyError_(f"{path}: is not an X25519 private key")
    return key


def encrypt_bundle(folder: Path, public_key: X25519PublicKey, out: Path) -> None:
    """Write ``folder`` (a bundle) as one encrypted file ``out``, readable only with the
    matching private key."""
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes(serialization.Encoding.Raw,
                                                           serialization.PublicFormat.Raw)
    key = _derive(ephemeral.exchange(public_key), ephemeral_public)
    nonce = os.urandom(NONCE_BYTES)
    header = MAGIC + ephemeral_public + nonce
    ciphertext = AESGCM(key).encrypt(nonce, _tar(folder), header)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_bytes(header + ciphertext)
    temporary.replace(out)


def decrypt_bundle(path: Path, private_key: X25519PrivateKey, into: Path) -> Path:
    """Open an encrypted bundle into the folder ``into``; refuse a tampered or truncated file."""
    data = path.read_bytes()
    header_length = len(MAGIC) + PUBLIC_BYTES + NONCE_BYTES
    if not data.startswith(MAGIC):
        raise EncryptionError(f"{path}: is not an encrypted linkage bundle")
    if len(data) < header_length + 16:
        raise EncryptionError(f"{path}: is truncated")
    header = data[:header_length]
    ephemeral_public = header[len(MAGIC):len(MAGIC) + PUBLIC_BYTES]
    nonce = header[len(MAGIC) + PUBLIC_BYTES:]
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    try:
        plaintext = AESGCM(_derive(shared, ephemeral_public)).decrypt(
            nonce, data[header_length:], header)
    except InvalidTag:
        raise EncryptionError(f"{path}: was changed or truncated after it was encrypted, or "
                              "was not encrypted for this key; refused") from None
    _untar(plaintext, into)
    return into


def _tar(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name in BUNDLE_FILES:
            info = tarfile.TarInfo(name)
            content = (folder / name).read_bytes()
            info.size, info.mtime, info.mode = len(content), 0, 0o600
            archive.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _untar(data: bytes, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r") as archive:
        for member in archive.getmembers():
            if member.name not in BUNDLE_FILES or not member.isfile():
                raise EncryptionError(f"unexpected file {member.name!r} in an encrypted bundle")
            (into / member.name).write_bytes(archive.extractfile(member).read())
