"""Provider signing keys, signatures and the linkage unit's register."""

import base64
import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from linkage.pseudonymise.encryption import load_public_key
from linkage.pseudonymise.keys import KeyError_, generate_key_file, generate_keypair
from linkage.pseudonymise.signing import (
    Register,
    SignatureError,
    generate_signing_keypair,
    load_signing_key,
    sign,
    signer_id,
)

DATA = b'{"provider": "la-1", "tokens": "0123456789"}'


def make_pair(folder: Path, name: str) -> tuple[Path, Path]:
    private, public = folder / f"{name}.key", folder / f"{name}.pub"
    generate_signing_keypair(private, public)
    return private, public


@pytest.fixture
def two_providers(tmp_path):
    """Two providers' key pairs, and a register folder holding both public keys."""
    keys = tmp_path / "keys"
    keys.mkdir()
    register = tmp_path / "register"
    register.mkdir()
    pairs = {name: make_pair(keys, name) for name in ("la-1", "la-2")}
    for name, (_, public) in pairs.items():
        (register / f"{name}.pub").write_bytes(public.read_bytes())
    return pairs, register


def key_material(*paths: Path) -> list[str]:
    """Every form in which a key file's secret or public bytes could leak into a message."""
    pieces = []
    for path in paths:
        text = path.read_text()
        pieces += [line for line in text.splitlines() if line and not line.startswith("-----")]
        pieces.append(text.strip())
        data = path.read_bytes()
        if b"PRIVATE" in data:
            key = serialization.load_pem_private_key(data, password=None)
            raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                    serialization.NoEncryption())
            public = key.public_key()
        elif b"PUBLIC" in data:
            public, raw = serialization.load_pem_public_key(data), b""
        else:  # a linkage key (64 hex characters), or a file that is no key at all
            try:
                raw, public = bytes.fromhex(text.strip()), None
            except ValueError:
                raw, public = b"", None
        if public is not None:
            raw += public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        pieces += [raw.hex(), base64.b64encode(raw).decode()]
    return [piece for piece in pieces if piece]


def assert_clean(problem: Exception, *paths: Path) -> None:
    message = str(problem)
    for piece in key_material(*paths):
        assert piece not in message
        assert piece[:16] not in message


def test_round_trip(two_providers):
    pairs, register_folder = two_providers
    register = Register.load(register_folder)
    assert register.providers == ["la-1", "la-2"]
    for name, (private, _) in pairs.items():
        signature = sign(load_signing_key(private), DATA)
        assert signature["algorithm"] == "ed25519"
        assert register.verify(DATA, signature, "bundle.enc") == name


def test_signer_id_is_stable_and_short(two_providers):
    pairs, _ = two_providers
    first = load_signing_key(pairs["la-1"][0])
    again = load_signing_key(pairs["la-1"][0])
    other = load_signing_key(pairs["la-2"][0])
    assert signer_id(first.public_key()) == signer_id(again.public_key())
    assert signer_id(first.public_key()) != signer_id(other.public_key())
    assert len(signer_id(first.public_key())) == 32
    assert sign(first, DATA)["signer"] == signer_id(first.public_key())


def test_signature_is_deterministic(two_providers):
    pairs, _ = two_providers
    key = load_signing_key(pairs["la-1"][0])
    assert sign(key, DATA) == sign(load_signing_key(pairs["la-1"][0]), DATA)
    assert sign(key, DATA) != sign(key, DATA + b" ")


@pytest.mark.parametrize("position", [0, len(DATA) // 2, len(DATA) - 1])
def test_one_changed_byte_is_refused(two_providers, position):
    pairs, register_folder = two_providers
    register = Register.load(register_folder)
    signature = sign(load_signing_key(pairs["la-1"][0]), DATA)
    changed = bytearray(DATA)
    changed[position] ^= 0x01
    with pytest.raises(SignatureError, match=r"^bundle\.enc: its signature does not verify"):
        register.verify(bytes(changed), signature, "bundle.enc")


def test_signature_from_a_key_not_in_the_register_is_refused(tmp_path, two_providers):
    _, register_folder = two_providers
    stranger, _ = make_pair(tmp_path, "stranger")
    signature = sign(load_signing_key(stranger), DATA)
    with pytest.raises(SignatureError, match=r"^bundle\.enc: signed by a key not in the register"):
        Register.load(register_folder).verify(DATA, signature, "bundle.enc")


def test_registered_signer_claimed_by_another_key_is_refused(tmp_path, two_providers):
    pairs, register_folder = two_providers
    stranger, _ = make_pair(tmp_path, "stranger")
    forged = sign(load_signing_key(stranger), DATA)
    forged["signer"] = sign(load_signing_key(pairs["la-1"][0]), DATA)["signer"]
    with pytest.raises(SignatureError, match=r"^bundle\.enc: its signature does not verify"):
        Register.load(register_folder).verify(DATA, forged, "bundle.enc")


def test_signature_of_one_provider_cannot_pass_as_another(two_providers):
    pairs, register_folder = two_providers
    forged = sign(load_signing_key(pairs["la-2"][0]), DATA)
    forged["signer"] = sign(load_signing_key(pairs["la-1"][0]), DATA)["signer"]
    with pytest.raises(SignatureError, match="does not verify"):
        Register.load(register_folder).verify(DATA, forged, "bundle.enc")


def test_unsigned_is_refused(two_providers):
    _, register_folder = two_providers
    with pytest.raises(SignatureError, match=r"^bundle\.enc: is not signed"):
        Register.load(register_folder).verify(DATA, None, "bundle.enc")


@pytest.mark.parametrize(("change", "expected"), [
    ({"algorithm": "rsa"}, "unknown algorithm 'rsa'"),
    ({"signature": "not base64!"}, "not valid base64"),
    ({"signature": None}, "malformed"),
    ({"signature": base64.b64encode(b"short").decode()}, "does not verify"),
])
def test_malformed_signatures_are_refused(two_providers, change, expected):
    pairs, register_folder = two_providers
    signature = {**sign(load_signing_key(pairs["la-1"][0]), DATA), **change}
    with pytest.raises(SignatureError, match=rf"^bundle\.enc: .*{expected}"):
        Register.load(register_folder).verify(DATA, signature, "bundle.enc")


def test_private_key_mode_0600_and_never_overwritten(tmp_path):
    private, public = make_pair(tmp_path, "la-1")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    before = private.read_bytes(), public.read_bytes()
    # Either file existing is refused, and nothing is written.
    with pytest.raises(KeyError_, match="never overwritten"):
        generate_signing_keypair(private, tmp_path / "new.pub")
    assert not (tmp_path / "new.pub").exists()
    with pytest.raises(KeyError_, match="never overwritten"):
        generate_signing_keypair(tmp_path / "new.key", public)
    assert not (tmp_path / "new.key").exists()
    with pytest.raises(KeyError_):
        generate_signing_keypair(tmp_path / "same", tmp_path / "same")
    assert not (tmp_path / "same").exists()
    assert (private.read_bytes(), public.read_bytes()) == before


def test_load_signing_key_refuses_a_readable_key(tmp_path):
    private, _ = make_pair(tmp_path, "la-1")
    os.chmod(private, 0o640)
    with pytest.raises(KeyError_, match="readable by others") as caught:
        load_signing_key(private)
    assert str(private) in str(caught.value)
    assert_clean(caught.value, private)


def test_load_signing_key_refuses_other_files(tmp_path):
    _, public = make_pair(tmp_path, "la-1")
    linkage_key = tmp_path / "linkage.key"
    generate_key_file(linkage_key)
    x25519, x25519_public = tmp_path / "unit.key", tmp_path / "unit.pub"
    generate_keypair(x25519, x25519_public)
    other = tmp_path / "notes.txt"
    other.write_text("hello\n")
    os.chmod(other, 0o600)
    cases = [
        (public, "is a public key; give the private signing key"),
        (linkage_key, "is a linkage key"),
        (x25519, "is an X25519 encryption key"),
        (x25519_public, "is a public key"),
        (tmp_path, "is a folder"),
        (other, "is not a private signing key"),
        (tmp_path / "absent.key", "no such key file"),
    ]
    for path, expected in cases:
        with pytest.raises(KeyError_) as caught:
            load_signing_key(path)
        assert str(caught.value).startswith(f"{path}: "), str(caught.value)
        assert expected in str(caught.value)
        if path.is_file():
            assert_clean(caught.value, path)
    # The public key is still refused when only its owner can read it.
    os.chmod(public, 0o600)
    with pytest.raises(KeyError_, match="is a public key"):
        load_signing_key(public)


def test_register_refuses_bad_folders_and_files(tmp_path, two_providers):
    pairs, register_folder = two_providers
    with pytest.raises(SignatureError, match="no such register folder"):
        Register.load(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no keys\n")
    with pytest.raises(SignatureError, match=rf"^{empty}: has no \.pub file"):
        Register.load(empty)

    generate_keypair(tmp_path / "unit.key", tmp_path / "unit.pub")
    linkage_key = tmp_path / "linkage.key"
    generate_key_file(linkage_key)
    cases = [
        (tmp_path / "unit.pub", "is an X25519 encryption key"),
        (pairs["la-1"][0], "is a private key"),
        (linkage_key, "is not a public signing key"),
    ]
    for source, expected in cases:
        bad = register_folder / "la-3.pub"
        bad.write_bytes(source.read_bytes())
        with pytest.raises(SignatureError) as caught:
            Register.load(register_folder)
        assert str(caught.value).startswith(f"{bad}: "), str(caught.value)
        assert expected in str(caught.value)
        assert_clean(caught.value, source)
        bad.unlink()
    assert Register.load(register_folder).providers == ["la-1", "la-2"]


def test_register_refuses_the_same_key_twice(two_providers):
    pairs, register_folder = two_providers
    copy = register_folder / "la-9.pub"
    copy.write_bytes(pairs["la-1"][1].read_bytes())
    with pytest.raises(SignatureError, match="same key") as caught:
        Register.load(register_folder)
    assert str(copy) in str(caught.value) and "la-1.pub" in str(caught.value)
    assert_clean(caught.value, pairs["la-1"][1])


def test_no_key_material_in_verification_messages(tmp_path, two_providers):
    pairs, register_folder = two_providers
    register = Register.load(register_folder)
    stranger, stranger_public = make_pair(tmp_path, "stranger")
    signature = sign(load_signing_key(pairs["la-1"][0]), DATA)
    problems = []
    for attempt in (
        lambda: register.verify(DATA + b"!", signature, "b"),
        lambda: register.verify(DATA, sign(load_signing_key(stranger), DATA), "b"),
        lambda: register.verify(DATA, None, "b"),
    ):
        with pytest.raises(SignatureError) as caught:
            attempt()
        problems.append(caught.value)
    for problem in problems:
        assert_clean(problem, pairs["la-1"][0], pairs["la-1"][1], stranger, stranger_public)
        assert signature["signature"] not in str(problem)


def test_encryption_key_loader_is_not_fooled_by_a_signing_key(tmp_path):
    # The two kinds of key must not be mistaken for one another in either direction.
    _, public = make_pair(tmp_path, "la-1")
    with pytest.raises(KeyError_, match="is not an X25519 public key"):
        load_public_key(public)
