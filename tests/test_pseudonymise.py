"""Keys, keyed tokens, Bloom filters, bundles, the leak guard and encryption."""

import datetime as dt
import hashlib
import json
import os
import stat
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from linkage.cli import app
from linkage.pseudonymise import bundle as bundle_module
from linkage.pseudonymise.bloom import bloom_filters, dice
from linkage.pseudonymise.bundle import (
    BundleError,
    linkage_schema,
    open_bundles,
    tokenise,
    write_bundle,
)
from linkage.pseudonymise.keys import KeyError_, load_key, subkey
from linkage.pseudonymise.tokens import keyed_tokens, transform
from linkage.sources import read_source
from tests.output import said

runner = CliRunner()
KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


@pytest.fixture(scope="module")
def pupils(world_dir):
    return read_source("school-census", [world_dir / "providers/dfe/school_census"])


@pytest.fixture(scope="module")
def looked_after(world_dir):
    return read_source("ssda903", sorted(world_dir.glob("providers/la_*/ssda903")))


@pytest.fixture(scope="module")
def keys_a(keyring):
    """The session's provider keys with the fixed linkage key A."""
    keys = keyring.for_provider()
    keys.linkage_key = KEY_A
    return keys


@pytest.fixture(scope="module")
def keys_b(keyring):
    keys = keyring.for_provider()
    keys.linkage_key = KEY_B
    return keys


def token_columns(tokens: pd.DataFrame) -> list[str]:
    return [c for c in tokens.columns if str(tokens[c].dtype) == "Int64"]


def test_same_input_and_key_give_identical_bundles(pupils, keys_a, tmp_path):
    first = write_bundle(pupils, keys_a, tmp_path / "a")
    write_bundle(pupils, keys_a, tmp_path / "b", workers=2)
    for name in ("linkage.part", "content.part", "manifest.json", "manifest.sig"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert first.manifest["rows"]["in"] == first.manifest["rows"]["out"] == len(pupils.records)


def test_different_keys_share_no_token(pupils):
    schema = linkage_schema()
    a, b = tokenise(pupils, KEY_A, schema), tokenise(pupils, KEY_B, schema)
    columns = token_columns(a)
    assert {"upn", "dob", "sex_dob", "postcode"} <= set(columns)
    for column in columns:
        assert not set(a[column].dropna()) & set(b[column].dropna()), column
    assert not set(a.forename_bloom.dropna()) & set(b.forename_bloom.dropna())


def test_families_separate_fields_but_join_comparable_ones():
    value = pd.Series(["B801200005001"])
    upn = keyed_tokens(transform("upn", [value]), subkey(KEY_A, "upn"))
    as_postcode = keyed_tokens(value, subkey(KEY_A, "postcode"))
    assert upn.iloc[0] != as_postcode.iloc[0]
    dob = pd.Series([dt.date(2015, 3, 7)])
    swapped = pd.Series([dt.date(2015, 7, 3)])
    dob_key = subkey(KEY_A, "dob")
    assert (keyed_tokens(transform("date_swapped", [dob]), dob_key).iloc[0]
            == keyed_tokens(transform("date", [swapped]), dob_key).iloc[0])


def test_invalid_upns_and_un_codes_give_no_token():
    values = pd.Series(["B801200005001", "A801200005001", "UN4", ""])
    tokens = keyed_tokens(transform("upn", [values]), subkey(KEY_A, "upn"))
    assert tokens.notna().tolist() == [True, False, False, False]


def columns_that_are_sex(tokens: pd.DataFrame, sex: pd.Series) -> list[str]:
    """The columns of a linkage part that carry sex and nothing else: on the rows where they
    are set (20 at least, of both sexes) each value goes with one sex and each sex with one
    value, whatever the values look like (a code, a keyed token, a filter)."""
    found = []
    for column in tokens.columns.difference(["source", "provider", "period", "record_id"]):
        values = tokens[column].replace("", pd.NA)
        rows = pd.DataFrame({"value": values, "sex": sex}).dropna()
        if len(rows) < 20 or rows.sex.nunique() < 2:
            continue
        if (rows.groupby("value").sex.nunique().max() == 1
                and rows.groupby("sex").value.nunique().max() == 1):
            found.append(column)
    return found


def tokens_with_sex(bundles, keyring) -> list[tuple[str, pd.DataFrame, pd.Series]]:
    """Each bundle's linkage part as the linkage unit opens it, with each record's sex from
    the content part (which only the data custodian opens)."""
    from linkage.release.content import record_groups
    from linkage.sources.schema import RECORD_KEY

    out = []
    for unit, custodian in zip(open_bundles(bundles, keyring.for_unit()),
                               open_bundles(bundles, keyring.for_custodian()), strict=True):
        tokens = unit.tokens()
        sexes = record_groups([custodian]).astype({"period": int, "record_id": str})
        joined = tokens.astype({"period": int, "record_id": str}).merge(
            sexes[[*RECORD_KEY, "sex"]].rename(columns={"sex": "true_sex"}), on=RECORD_KEY,
            how="left", validate="one_to_one")
        assert joined.true_sex.notna().all(), unit.name   # every record's sex is known
        out.append((unit.manifest["source"], joined.drop(columns="true_sex"), joined.true_sex))
    return out


def test_sex_never_stands_alone_in_a_real_bundle(world_bundles, keyring):
    """What the linkage unit reads of every bundle of the world: no column is sex alone (its
    frequency would give it away), except the attribute the schema gives adopters' records
    (a household's make-up is compared with the 903 AD1 description)."""
    declared = {source: {name for name in names if name == "sex"} for source, names in
                linkage_schema()["attributes"].items()}
    checked = 0
    for source, tokens, sex in tokens_with_sex(world_bundles, keyring):
        found = set(columns_that_are_sex(tokens, sex))
        assert found <= declared.get(source, set()), (source, found)
        checked += len(tokens)
    assert checked > 1000


def test_the_sex_check_finds_a_token_of_sex_alone(pupils, keys_a, keyring, tmp_path):
    """The check above can fail: under a schema with a keyed token of sex alone, a real bundle
    of pupils is caught, and sex_dob (sex with the date of birth) is not."""
    from linkage.config import packaged_path, use_site_folder

    site = tmp_path / "site"
    site.mkdir()
    schema = packaged_path("linkage_schema.yaml").read_text(encoding="utf-8")
    (site / "linkage_schema.yaml").write_text(schema.replace(
        "tokens:\n", "tokens:\n  sex_alone:         {fields: [sex], transform: text, "
        "family: sex_alone}\n", 1), encoding="utf-8")
    use_site_folder(site)
    try:
        write_bundle(pupils, keys_a, tmp_path / "bundle")
        [(_, tokens, sex)] = tokens_with_sex([tmp_path / "bundle"], keyring)
    finally:
        use_site_folder(None)
    assert columns_that_are_sex(tokens, sex) == ["sex_alone"]


def sha256_token(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def test_dictionary_attack_fails_on_keyed_tokens_and_wins_on_plain_hashes(pupils):
    """An attacker hashes every DOB x sex: useless against keyed tokens, total against SHA-256."""
    tokens = tokenise(pupils, KEY_A, linkage_schema())
    days = pd.date_range("1995-01-01", "2026-12-31", freq="D").strftime("%Y-%m-%d")
    dictionary = {sha256_token(f"{sex}|{day}"): f"{sex}|{day}" for sex in "MF" for day in days}
    wrong_key = subkey(KEY_B, "sex_dob")
    guesses = pd.Series(list(dictionary.values()))
    with_wrong_key = set(keyed_tokens(guesses, wrong_key))

    keyed = set(tokens.sex_dob.dropna())
    assert not keyed & set(dictionary)
    assert not keyed & with_wrong_key

    plain_text = transform("sex_date", [pupils.records.sex, pupils.records.dob])
    plain = plain_text[plain_text != ""].map(sha256_token)
    recovered = plain.map(dictionary)
    assert recovered.notna().all()
    assert (recovered == plain_text[plain_text != ""]).all()


def test_bloom_filters_keep_name_similarity_under_the_key():
    names = pd.Series(["Catherine", "Katherine", "Catherine", "Mohammed", "", "ZOË"])
    filters = bloom_filters(names, subkey(KEY_A, "name"), 1024, 15)
    assert filters.iloc[0] == filters.iloc[2]
    assert dice(filters.iloc[0], filters.iloc[1]) > 0.7
    assert dice(filters.iloc[0], filters.iloc[3]) < 0.3
    assert filters.iloc[4] is None
    assert filters.iloc[5] == bloom_filters(pd.Series(["zoe"]), subkey(KEY_A, "name"),
                                            1024, 15).iloc[0]
    other_key = bloom_filters(names, subkey(KEY_B, "name"), 1024, 15)
    assert other_key.iloc[0] != filters.iloc[0]
    balanced = bloom_filters(names, subkey(KEY_A, "name"), 1024, 15, "balanced")
    weights = {bin(int.from_bytes(f, "big")).count("1") for f in balanced.dropna()}
    assert weights == {1024}  # every balanced filter sets exactly half its bits
    assert dice(balanced.iloc[0], balanced.iloc[1]) > dice(balanced.iloc[0], balanced.iloc[3])


def test_leak_guard_refuses_a_planted_leak_and_writes_nothing(pupils, keys_a, tmp_path,
                                                              monkeypatch):
    real = bundle_module.tokenise

    def leaky(data, key, schema, workers=1):
        tokens = real(data, key, schema, workers)
        tokens["debug"] = data.records.upn.to_numpy()  # a plaintext UPN slips in
        return tokens

    monkeypatch.setattr(bundle_module, "tokenise", leaky)
    with pytest.raises(BundleError, match="upn"):
        write_bundle(pupils, keys_a, tmp_path / "bundle")
    assert list(tmp_path.iterdir()) == []


def test_bundles_hashed_with_different_keys_are_refused(looked_after, keys_a, keys_b,
                                                         keyring, tmp_path):
    write_bundle(looked_after, keys_a, tmp_path / "la_one")
    write_bundle(looked_after, keys_b, tmp_path / "la_two")
    assert len(open_bundles([tmp_path / "la_one"], keyring.for_unit())) == 1
    with pytest.raises(BundleError) as refused:
        open_bundles([tmp_path / "la_one", tmp_path / "la_two"], keyring.for_unit())
    assert "la_one" in str(refused.value) and "la_two" in str(refused.value)


def _edit_manifest(bundle, change) -> None:
    manifest = json.loads((bundle / "manifest.json").read_text())
    change(manifest)
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_a_changed_part_is_refused(looked_after, keys_a, keyring, tmp_path):
    write_bundle(looked_after, keys_a, tmp_path / "bundle")
    part = tmp_path / "bundle" / "linkage.part"
    part.write_bytes(part.read_bytes()[:-20] + b"x" * 20)
    opened = open_bundles([tmp_path / "bundle"], keyring.for_unit())
    with pytest.raises(BundleError, match="checksum"):
        opened[0].tokens()
    part.unlink()  # a part lost on the way
    with pytest.raises(BundleError, match="incomplete"):
        open_bundles([tmp_path / "bundle"], keyring.for_unit())[0].tokens()


def test_an_edited_bundle_with_recomputed_checksums_is_refused(looked_after, keys_a, keys_b,
                                                               keyring, tmp_path):
    """An attacker who edits a part and recomputes its checksum must re-sign the manifest,
    which needs the provider's signing key."""
    write_bundle(looked_after, keys_a, tmp_path / "bundle")
    bundle = tmp_path / "bundle"
    part = bundle / "linkage.part"
    part.write_bytes(part.read_bytes()[:-1] + bytes([part.read_bytes()[-1] ^ 1]))
    _edit_manifest(bundle, lambda m: m["parts"]["linkage"].update(
        sha256=hashlib.sha256(part.read_bytes()).hexdigest()))
    with pytest.raises(BundleError, match="does not verify"):
        open_bundles([bundle], keyring.for_unit())
    # a key fingerprint copied from another bundle is an edit too
    write_bundle(looked_after, keys_b, tmp_path / "other")
    _edit_manifest(tmp_path / "other", lambda m: m.update(
        key_fingerprint=json.loads((bundle / "manifest.json").read_text())["key_fingerprint"]))
    with pytest.raises(BundleError, match="does not verify"):
        open_bundles([tmp_path / "other"], keyring.for_unit())


def test_unsigned_foreign_and_unknown_schema_bundles_are_refused(looked_after, keys_a, keyring,
                                                                 tmp_path):
    from linkage.pseudonymise.signing import generate_signing_keypair, load_signing_key, sign

    write_bundle(looked_after, keys_a, tmp_path / "unsigned")
    (tmp_path / "unsigned" / "manifest.sig").unlink()
    with pytest.raises(BundleError, match="not signed"):
        open_bundles([tmp_path / "unsigned"], keyring.for_unit())
    generate_signing_keypair(tmp_path / "stranger.sign", tmp_path / "stranger.pub")
    stranger = keyring.for_provider()
    stranger.linkage_key, stranger.signing_key = KEY_A, load_signing_key(
        tmp_path / "stranger.sign")
    write_bundle(looked_after, stranger, tmp_path / "foreign")
    with pytest.raises(BundleError, match="not in the register"):
        open_bundles([tmp_path / "foreign"], keyring.for_unit())
    write_bundle(looked_after, keys_a, tmp_path / "future")
    _edit_manifest(tmp_path / "future", lambda m: m.update(schema_version=99))
    text = (tmp_path / "future" / "manifest.json").read_bytes()
    (tmp_path / "future" / "manifest.sig").write_text(json.dumps(sign(keys_a.signing_key, text)))
    with pytest.raises(BundleError, match="schema version 99"):
        open_bundles([tmp_path / "future"], keyring.for_unit())


def test_each_role_opens_only_its_own_part(looked_after, keys_a, keyring, tmp_path):
    write_bundle(looked_after, keys_a, tmp_path / "bundle")
    [as_unit] = open_bundles([tmp_path / "bundle"], keyring.for_unit())
    assert len(as_unit.tokens()) == len(looked_after.records)
    with pytest.raises(BundleError, match="custodian's private key"):
        as_unit.content()
    [as_custodian] = open_bundles([tmp_path / "bundle"], keyring.for_custodian())
    assert as_custodian.content().num_rows > 0
    with pytest.raises(BundleError, match="linkage unit's private key"):
        as_custodian.tokens()
    # the linkage unit's private key given as the custodian's opens no content
    from linkage.pseudonymise.roles import LinkageUnitKeys

    swapped = LinkageUnitKeys(keyring.for_unit().register,
                              custodian_key=keyring.for_unit().unit_key)
    with pytest.raises(BundleError, match="another recipient"):
        open_bundles([tmp_path / "bundle"], swapped)[0].content()
    # a content part renamed as the linkage part is refused, not read
    (tmp_path / "bundle" / "linkage.part").write_bytes(
        (tmp_path / "bundle" / "content.part").read_bytes())
    with pytest.raises(BundleError):
        open_bundles([tmp_path / "bundle"], keyring.for_unit())[0].tokens()


def test_record_ids_and_row_order_stay_with_the_provider(looked_after, keys_a, keyring,
                                                          tmp_path):
    write_bundle(looked_after, keys_a, tmp_path / "bundle")
    tokens = open_bundles([tmp_path / "bundle"], keyring.for_unit())[0].tokens()
    assert not set(tokens.record_id) & set(looked_after.records.record_id.astype(str))
    assert tokens.record_id.str.fullmatch(r"[0-9a-f]{24}").all()
    order = ["provider", "period", "record_id"]  # not the file's order
    assert tokens[order].equals(tokens[order].sort_values(order, ignore_index=True))
    assert not {"ethnicity", "sex", "age_band"} & set(tokens.columns)


def hash_command(world_dir, tmp_path, *extra):
    return runner.invoke(app, ["hash", "--source", "ssda903", "--provider", "LA",
                               *extra, *map(str, sorted(world_dir.glob(
                                   "providers/la_*/ssda903"))[:1])])


def test_keygen_writes_private_keys_and_never_overwrites(tmp_path):
    key = tmp_path / "linkage.key"
    assert runner.invoke(app, ["keygen", "--out", str(key)]).exit_code == 0
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert len(load_key(key)) == 32
    before = key.read_bytes()
    again = runner.invoke(app, ["keygen", "--out", str(key)])
    assert again.exit_code == 1 and key.read_bytes() == before
    assert before.decode().strip() not in again.output


def test_key_files_readable_by_others_are_refused(tmp_path):
    key = tmp_path / "key"
    key.write_text(KEY_A.hex())
    os.chmod(key, 0o644)
    with pytest.raises(KeyError_, match="readable by others"):
        load_key(key)


def test_key_from_the_environment(tmp_path, monkeypatch, world_dir):
    monkeypatch.setenv("LINKAGE_KEY", KEY_A.hex())
    result = hash_command(world_dir, tmp_path, "--out", str(tmp_path / "b"))
    assert result.exit_code == 0, result.output
    assert KEY_A.hex() not in result.output
    manifest = (tmp_path / "b" / "manifest.json").read_text()
    assert KEY_A.hex() not in manifest


def test_provider_code_must_match_the_files(world_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("LINKAGE_KEY", KEY_A.hex())
    cin = sorted(world_dir.glob("providers/la_*/cin"))[0]
    result = runner.invoke(app, ["hash", "--source", "cin", "--provider", "999", "--out",
                                 str(tmp_path / "b"), str(cin)])
    assert result.exit_code == 1
    assert "not provider 999" in said(result)
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("kind", ["ssda903", "cin", "school-census", "asg-children"])
def test_content_carries_no_identifier(world_dir, keys_a, keyring, tmp_path, kind):
    patterns = {"ssda903": "providers/la_*/ssda903", "cin": "providers/la_*/cin",
                "school-census": "providers/dfe/school_census",
                "asg-children": "providers/*/asg/asg_children.csv"}
    data = read_source(kind, sorted(world_dir.glob(patterns[kind])))
    write_bundle(data, keys_a, tmp_path / "bundle")
    content = open_bundles([tmp_path / "bundle"], keyring.for_custodian())[0].content(
        ).to_pandas()
    payload = "\n".join(content.payload)
    records = data.records
    for values in (records.upn, records.postcode, records.surname, records.forename):
        found = [v for v in set(values) if v and len(v) >= 6 and v in payload]
        assert not found, (kind, len(found))
    # dates of birth: no field of that name travels (event dates do, and may coincide)
    keys = {key.lower() for row in content.payload for key in json.loads(row)}
    assert not keys & {"dob", "mc_dob", "expected_dob", "upn", "home_post", "pl_post"}


def test_salted_filters_depend_on_name_and_birthday_with_day_and_month_unordered():
    dates = pd.Series([dt.date(2015, 3, 7), dt.date(2015, 7, 3), dt.date(2015, 3, 8),
                       dt.date(2016, 3, 7), dt.date(2015, 3, 7), None])
    salts = transform("date_unordered", [dates])
    assert salts.iloc[0] == salts.iloc[1] != salts.iloc[2]  # a day/month swap keeps the salt
    assert salts.iloc[0] != salts.iloc[3] and salts.iloc[5] == ""
    names = pd.Series(["Catherine", "Catherine", "Catherine", "Catherine", "Katherine",
                       "Catherine"])
    key = subkey(KEY_A, "forename")
    filters = bloom_filters(names, key, 1024, 15, salts=salts)
    assert filters.iloc[0] == filters.iloc[1]  # one name, one salt: one filter
    # one name under other birthdays: unrelated bit patterns, no more alike than two names
    assert filters.iloc[0] != filters.iloc[2] and dice(filters.iloc[0], filters.iloc[2]) < 0.3
    assert dice(filters.iloc[0], filters.iloc[3]) < 0.3
    assert dice(filters.iloc[0], filters.iloc[4]) > 0.7  # similar names, one salt: similar
    assert filters.iloc[5] is None  # no date of birth: no filter
    unsalted = bloom_filters(names, key, 1024, 15)
    assert not set(filters.dropna()) & set(unsalted.dropna())


def test_the_schema_has_no_standalone_date_part_and_a_subkey_per_name(pupils):
    schema = linkage_schema()
    assert schema["schema_version"] == 3
    blooms = {name: spec for name, spec in schema["tokens"].items()
              if spec["transform"] == "bloom"}
    assert set(blooms) == {"forename_bloom", "surname_bloom"}
    assert len({spec["family"] for spec in blooms.values()}) == len(blooms)
    assert all(spec["salt"] == "dob_salt" for spec in blooms.values())
    tokens = tokenise(pupils, KEY_A, schema)
    assert {"dob", "dob_swapped", "dob_salt", "sex_dob", "forename_bloom"} <= set(tokens)
    assert not {"dob_year_month", "dob_year_day", "dob_month_day", "sex_birth_year"} & set(
        tokens)
    # every filter frequency follows a person, not a name (most common names exceed 1%)
    top = tokens.forename_bloom.dropna().value_counts().iloc[0]
    assert top <= tokens.dob_salt.dropna().value_counts().iloc[0]


def test_a_generic_source_of_identifiers_only_hashes(keys_a, keyring, tmp_path):
    """A mapping with no category field: every record is in the content part, empty."""
    data_dir = Path(__file__).parent / "data" / "bad" / "generic"
    data = read_source("generic", [data_dir / "people.csv"], data_dir / "mapping_good.yaml")
    write_bundle(data, keys_a, tmp_path / "bundle")
    content = open_bundles([tmp_path / "bundle"], keyring.for_custodian())[0].content(
        ).to_pandas()
    fields = content[content.table == "fields"]
    assert len(fields) == len(data.records) and set(fields.payload) == {"{}"}
