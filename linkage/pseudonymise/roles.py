"""The keys each role holds, loaded from files named by options or environment variables.

- provider: the linkage key (--key or LINKAGE_KEY), its signing key (LINKAGE_SIGNING_KEY),
  the linkage unit's and the custodian's public keys (LINKAGE_UNIT_PUBLIC_KEY,
  LINKAGE_CUSTODIAN_PUBLIC_KEY);
- linkage unit: its private key (LINKAGE_UNIT_KEY) and the register of providers' public
  signing keys (LINKAGE_REGISTER, a folder);
- data custodian: its private key (LINKAGE_CUSTODIAN_KEY), which also derives the release
  secret, and the register.

Keys never come from code or the command line itself: a file's path or an environment variable.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from linkage.pseudonymise.encryption import load_private_key, load_public_key
from linkage.pseudonymise.keys import (
    KeyError_,
    generate_key_file,
    generate_keypair,
    load_key,
)
from linkage.pseudonymise.signing import (
    Register,
    SignatureError,
    generate_signing_keypair,
    load_signing_key,
)

SIGNING_ENV = "LINKAGE_SIGNING_KEY"
UNIT_PUBLIC_ENV = "LINKAGE_UNIT_PUBLIC_KEY"
CUSTODIAN_PUBLIC_ENV = "LINKAGE_CUSTODIAN_PUBLIC_KEY"
UNIT_ENV = "LINKAGE_UNIT_KEY"
CUSTODIAN_ENV = "LINKAGE_CUSTODIAN_KEY"
REGISTER_ENV = "LINKAGE_REGISTER"


@dataclass
class ProviderKeys:
    """What a provider's ``hash`` needs."""

    linkage_key: bytes
    signing_key: Ed25519PrivateKey
    unit_public: X25519PublicKey
    custodian_public: X25519PublicKey

    def __reduce__(self):
        # as raw bytes, for a worker process started afresh (key objects do not pickle)
        return (_provider_keys_from_raw, (
            self.linkage_key, self.signing_key.private_bytes_raw(),
            self.unit_public.public_bytes_raw(), self.custodian_public.public_bytes_raw()))


def _provider_keys_from_raw(linkage_key: bytes, signing: bytes, unit: bytes,
                            custodian: bytes) -> ProviderKeys:
    return ProviderKeys(linkage_key, Ed25519PrivateKey.from_private_bytes(signing),
                        X25519PublicKey.from_public_bytes(unit),
                        X25519PublicKey.from_public_bytes(custodian))


@dataclass
class LinkageUnitKeys:
    """What opening bundles needs: the register, and the private key of the reader's role
    (the linkage unit's opens linkage parts, the custodian's content parts)."""

    register: Register
    unit_key: X25519PrivateKey | None = None
    custodian_key: X25519PrivateKey | None = None


def _path(given: Path | None, variable: str, option: str, what: str) -> Path:
    if given is not None:
        return given
    if os.environ.get(variable):
        return Path(os.environ[variable])
    raise KeyError_(f"no {what}: give {option} FILE or set {variable}")


def provider_keys(key: Path | None = None, signing: Path | None = None,
                  unit_public: Path | None = None, custodian_public: Path | None = None
                  ) -> ProviderKeys:
    """A provider's keys from the given files, or from the environment."""
    unit, custodian = "linkage unit's public key", "data custodian's public key"
    return ProviderKeys(
        load_key(key),
        load_signing_key(_path(signing, SIGNING_ENV, "--sign-key", "signing key")),
        load_public_key(_path(unit_public, UNIT_PUBLIC_ENV, "--to-unit", unit), unit),
        load_public_key(_path(custodian_public, CUSTODIAN_PUBLIC_ENV, "--to-custodian",
                              custodian), custodian))


def load_register(folder: Path | None = None) -> Register:
    """The register of providers' public signing keys (a folder of .pub files)."""
    path = _path(folder, REGISTER_ENV, "--register", "register of providers' signing keys")
    try:
        return Register.load(path)
    except SignatureError as problem:
        raise KeyError_(str(problem)) from None


def unit_keys(unit_key: Path | None = None, register: Path | None = None) -> LinkageUnitKeys:
    """The linkage unit's keys: its private key and the register."""
    wanted = "linkage unit's private key"
    private = load_private_key(_path(unit_key, UNIT_ENV, "--unit-key", wanted), wanted)
    return LinkageUnitKeys(load_register(register), unit_key=private)


def custodian_keys(custodian_key: Path | None = None, register: Path | None = None
                   ) -> LinkageUnitKeys:
    """The data custodian's keys: its private key and the register."""
    wanted = "data custodian's private key"
    private = load_private_key(_path(custodian_key, CUSTODIAN_ENV, "--custodian-key", wanted),
                               wanted)
    return LinkageUnitKeys(load_register(register), custodian_key=private)


def release_secret(custodian_key: X25519PrivateKey) -> bytes:
    """The custodian's release secret (projects' pseudonyms derive from it): derived from its
    private key, so it lives in the custodian's key file and never in the spine."""
    raw = custodian_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None,
                info=b"linkage/release-secret/v1").derive(raw)


@dataclass
class Keyring:
    """Every role's keys in one folder, for a rehearsal on synthetic data (demo, tests,
    benchmarks). In a real deployment each role makes its own keys and no folder holds them
    all: the linkage unit never holds the linkage key."""

    folder: Path
    provider: str = "provider"

    @classmethod
    def create(cls, folder: Path, provider: str = "provider") -> "Keyring":
        folder.mkdir(parents=True, exist_ok=True)
        ring = cls(folder, provider)
        generate_key_file(ring.linkage_key)
        generate_keypair(ring.unit_key, ring.unit_public)
        generate_keypair(ring.custodian_key, ring.custodian_public)
        ring.register.mkdir(exist_ok=True)
        generate_signing_keypair(ring.signing_key, ring.register / f"{provider}.pub")
        return ring

    linkage_key = property(lambda self: self.folder / "linkage.key")
    unit_key = property(lambda self: self.folder / "linkage-unit.key")
    unit_public = property(lambda self: self.folder / "linkage-unit.key.pub")
    custodian_key = property(lambda self: self.folder / "custodian.key")
    custodian_public = property(lambda self: self.folder / "custodian.key.pub")
    signing_key = property(lambda self: self.folder / f"{self.provider}.sign")
    register = property(lambda self: self.folder / "register")

    def for_provider(self) -> ProviderKeys:
        return provider_keys(self.linkage_key, self.signing_key, self.unit_public,
                             self.custodian_public)

    def for_unit(self) -> LinkageUnitKeys:
        return unit_keys(self.unit_key, self.register)

    def for_custodian(self) -> LinkageUnitKeys:
        return custodian_keys(self.custodian_key, self.register)

    def env(self) -> dict[str, str]:
        """The environment variables that point every command at these keys."""
        return {"LINKAGE_KEY": self.linkage_key.read_text().strip(),
                SIGNING_ENV: str(self.signing_key), UNIT_PUBLIC_ENV: str(self.unit_public),
                CUSTODIAN_PUBLIC_ENV: str(self.custodian_public), UNIT_ENV: str(self.unit_key),
                CUSTODIAN_ENV: str(self.custodian_key), REGISTER_ENV: str(self.register)}
