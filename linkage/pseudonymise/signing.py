"""Providers' signing keys, and the linkage unit's register of them.

Encryption keeps a bundle secret on its way to the linkage unit, but anyone holding the linkage
unit's public key can encrypt a bundle. So each provider also signs its bundle with its own
Ed25519 key, and the linkage unit keeps a register of the providers' public signing keys: a
bundle that was changed after it was signed, or signed by a key not in the register, is refused.
Ed25519 signatures are deterministic, so signing the same bytes twice gives the same signature.
"""

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from linkage.pseudonymise.keys import KEY_BYTES, KeyError_, read_secret_file, write_key_pair

ALGORITHM = "ed25519"
SIGNER_HEX = 32
_SIGNER_PATTERN = re.compile(rf"[0-9a-f]{{{SIGNER_HEX}}}")


class SignatureError(Exception):
    """A signature or the register cannot be trusted; the message names the file or bundle."""


def generate_signing_keypair(private_path: Path, public_path: Path) -> None:
    """A provider's Ed25519 key pair as PEM: the private key (PKCS8, mode 0600) and the public
    key (SubjectPublicKeyInfo) to give to the linkage unit. Neither file is ever overwritten."""
    write_key_pair(Ed25519PrivateKey.generate(), private_path, public_path)


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """A provider's private signing key from ``path`` (PEM, Ed25519, readable by its owner only)."""
    data = read_secret_file(path, "private signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise KeyError_(f"{path}: is protected by a password; a signing key is stored "
                        "unencrypted with mode 0600") from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyError_(f"{path}: {_what_else(data)}") from None
    if isinstance(key, X25519PrivateKey):
        raise KeyError_(f"{path}: is an X25519 encryption key, not a signing key; give the "
                        "private signing key (Ed25519)")
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{path}: is not an Ed25519 private key")
    return key


def _public_key(data: bytes) -> object | None:
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        return None


def _what_else(data: bytes) -> str:
    """What a file that is not a PEM private key is, as far as can be told."""
    if _public_key(data) is not None:
        return "is a public key; give the private signing key"
    text = data.decode("ascii", errors="replace").strip()
    if len(text) == 2 * KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in text):
        return "is a linkage key, not a signing key; give the private signing key (Ed25519)"
    return "is not a private signing key (PEM, Ed25519)"


def signer_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable fingerprint of a public signing key: the first 32 hex characters of the
    SHA-256 of its raw bytes."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:SIGNER_HEX]


def sign(private_key: Ed25519PrivateKey, data: bytes) -> dict[str, str]:
    """The signature of ``data``: ``{"algorithm", "signer", "signature"}`` (base64)."""
    return {"algorithm": ALGORITHM,
            "signer": signer_id(private_key.public_key()),
            "signature": base64.b64encode(private_key.sign(data)).decode("ascii")}


class Register:
    """The linkage unit's register: each provider's name and public signing key."""

    def __init__(self, providers: Mapping[str, Ed25519PublicKey]) -> None:
        """A register of ``providers`` (name to public key); one key per provider."""
        self._by_signer: dict[str, tuple[str, Ed25519PublicKey]] = {}
        for name, key in providers.items():
            signer = signer_id(key)
            if signer in self._by_signer:
                raise SignatureError(f"providers {self._by_signer[signer][0]} and {name} have "
                                     "the same signing key; each provider needs its own")
            self._by_signer[signer] = (name, key)

    @property
    def providers(self) -> list[str]:
        """The registered providers' names, sorted."""
        return sorted(name for name, _ in self._by_signer.values())

    @classmethod
    def load(cls, folder: Path) -> "Register":
        """The register in ``folder``: one ``NAME.pub`` file (Ed25519 public key, PEM) per
        provider."""
        if folder.is_file():
            raise SignatureError(f"{folder}: is a file; give the register folder (one "
                                 "NAME.pub file per provider)")
        if not folder.is_dir():
            raise SignatureError(f"{folder}: no such register folder")
        files = sorted(path for path in folder.glob("*.pub") if path.is_file())
        if not files:
            raise SignatureError(f"{folder}: has no .pub file; the register holds one provider "
                                 "public signing key per NAME.pub file")
        providers: dict[str, Ed25519PublicKey] = {}
        seen: dict[str, Path] = {}
        for path in files:
            key = _load_register_key(path)
            signer = signer_id(key)
            if signer in seen:
                raise SignatureError(f"{path}: is the same key as {seen[signer]}; each provider "
                                     "needs its own signing key")
            seen[signer] = path
            providers[path.stem] = key
        return cls(providers)

    def verify(self, data: bytes, signature: dict | None, where: str) -> str:
        """The name of the registered provider who signed ``data``; refuse (naming ``where``)
        an unsigned, malformed, foreign or non-verifying signature."""
        if signature is None:
            raise SignatureError(f"{where}: is not signed; the provider must sign it with "
                                 "their signing key")
        if not isinstance(signature, dict) or not all(
                isinstance(signature.get(field), str)
                for field in ("algorithm", "signer", "signature")):
            raise SignatureError(f"{where}: its signature is malformed (algorithm, signer and "
                                 "signature are needed)")
        if signature["algorithm"] != ALGORITHM:
            raise SignatureError(f"{where}: is signed with an unknown algorithm "
                                 f"{signature['algorithm'][:40]!r}; only {ALGORITHM} is accepted")
        signer = signature["signer"]
        if signer not in self._by_signer:
            shown = f" (signer {signer})" if _SIGNER_PATTERN.fullmatch(signer) else ""
            raise SignatureError(f"{where}: signed by a key not in the register{shown}")
        try:
            raw = base64.b64decode(signature["signature"], validate=True)
        except (binascii.Error, ValueError):
            raise SignatureError(f"{where}: its signature is not valid base64") from None
        name, key = self._by_signer[signer]
        try:
            key.verify(raw, data)
        except InvalidSignature:
            raise SignatureError(f"{where}: its signature does not verify: the bundle was "
                                 "changed after it was signed, or signed by another key") from None
        return name


def _load_register_key(path: Path) -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as problem:
        raise SignatureError(f"{path}: cannot be read ({problem.strerror})") from None
    key = _public_key(data)
    if isinstance(key, Ed25519PublicKey):
        return key
    if isinstance(key, X25519PublicKey):
        raise SignatureError(f"{path}: is an X25519 encryption key, not a signing key "
                             "(Ed25519 public key)")
    if key is not None:
        raise SignatureError(f"{path}: is not an Ed25519 public key")
    if b"PRIVATE KEY" in data:
        raise SignatureError(f"{path}: is a private key; the register holds providers' public "
                             "keys only (remove this file and keep it secret)")
    raise SignatureError(f"{path}: is not a public signing key (PEM, Ed25519)")
