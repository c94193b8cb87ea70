"""Sealing a bundle's parts to their recipients, and opening them there, in memory only.

Each part of a bundle is encrypted to one recipient's X25519 public key: the linkage part to the
linkage unit, the content part to the data custodian. Hybrid encryption with `cryptography`: an
X25519 key agreement with an ephemeral key, HKDF-SHA256 to a 256-bit key, and AES-256-GCM. The
header (format, part name, ephemeral public key, nonce) is authenticated too, so a change, a
truncation, or a linkage part passed off as a content part is refused.

The ephemeral key and nonce are derived from the provider's linkage key, the part's bytes and the
recipient, so the same input, key and schema give a byte-identical bundle (a deterministic
encryption: it reveals only that two parts are equal, which their checksums say anyway).
Opened parts are returned as bytes and never written to disk.
"""

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from linkage.pseudonymise.keys import KeyError_, is_public_key, read_secret_file

MAGIC = b"LINKAGE-PART-v2\n"
PUBLIC_BYTES = 32
NONCE_BYTES = 12


class EncryptionError(Exception):
    """A sealed part cannot be opened; the message names the file."""


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def recipient_id(public_key: X25519PublicKey) -> str:
    """A short fingerprint of a recipient's public key, recorded in the manifest."""
    return hashlib.sha256(_raw(public_key)).hexdigest()[:32]


def _derive(shared: bytes, ephemeral_public: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=ephemeral_public,
                info=b"linkage/part-encryption/v2").derive(shared)


def load_public_key(path: Path, wanted: str = "recipient's public key") -> X25519PublicKey:
    """A recipient's public key (PEM, X25519), as written by ``linkage keygen --keypair``;
    ``wanted`` names it in messages."""
    if path.is_dir():
        raise KeyError_(f"{path}: is a folder; give the {wanted} file")
    try:
        data = path.read_bytes()
    except OSError:
        raise KeyError_(f"{path}: no such key file (the {wanted})") from None
    if b"PRIVATE KEY" in data:
        raise KeyError_(f"{path}: is a private key; give the {wanted} (the .pub file), and "
                        "keep the private key secret")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        raise KeyError_(f"{path}: is not a recipient's public key (PEM, X25519 from "
                        "linkage keygen --keypair)") from None
    if not isinstance(key, X25519PublicKey):
        raise KeyError_(f"{path}: is not an X25519 public key")
    return key


def load_private_key(path: Path, wanted: str = "private key") -> X25519PrivateKey:
    """A recipient's private key (the linkage unit's or the custodian's), mode 0600;
    ``wanted`` names it in messages."""
    data = read_secret_file(path, wanted)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        if is_public_key(path):
            raise KeyError_(f"{path}: is a public key; give the {wanted}") from None
        raise KeyError_(f"{path}: is not a private key (PEM, X25519 from linkage keygen "
                        "--keypair)") from None
    if not isinstance(key, X25519PrivateKey):
        raise KeyError_(f"{path}: is not an X25519 private key")
    return key


def seal(plaintext: bytes, public_key: X25519PublicKey, part: str, linkage_key: bytes) -> bytes:
    """``plaintext`` encrypted to ``public_key`` as the bundle part named ``part``."""
    recipient = _raw(public_key)
    material = HKDF(algorithm=hashes.SHA256(), length=32 + NONCE_BYTES, salt=None,
                    info=b"linkage/part-ephemeral/v2|" + part.encode() + b"|" + recipient
                    + hashlib.sha256(plaintext).digest()).derive(linkage_key)
    ephemeral = X25519PrivateKey.from_private_bytes(material[:32])
    ephemeral_public = _raw(ephemeral.public_key())
    nonce = material[32:]
    header = MAGIC + part.encode().ljust(8, b" ") + ephemeral_public + nonce
    key = _derive(ephemeral.exchange(public_key), ephemeral_public)
    return header + AESGCM(key).encrypt(nonce, plaintext, header)


def open_sealed(data: bytes, private_key: X25519PrivateKey, part: str, where: str) -> bytes:
    """The plaintext of a sealed part; refused (naming ``where``) if it was changed, truncated,
    is another part, or was sealed for another key."""
    start = len(MAGIC) + 8
    header_length = start + PUBLIC_BYTES + NONCE_BYTES
    if not data.startswith(MAGIC):
        raise EncryptionError(f"{where}: is not a sealed bundle part")
    if len(data) < header_length + 16:
        raise EncryptionError(f"{where}: is truncated")
    header = data[:header_length]
    if header[len(MAGIC):start].rstrip() != part.encode():
        raise EncryptionError(f"{where}: is not the {part} part of a bundle")
    ephemeral_public = header[start:start + PUBLIC_BYTES]
    nonce = header[start + PUBLIC_BYTES:]
    shared = private_key.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
    try:
        return AESGCM(_derive(shared, ephemeral_public)).decrypt(
            nonce, data[header_length:], header)
    except InvalidTag:
        raise EncryptionError(f"{where}: cannot be opened with this key: it was sealed for "
                              "another recipient, or changed after it was sealed") from None
