"""Property-based tests of the value checks: UPNs, dates and sex codes."""

import datetime as dt

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from linkage.sources.values import (
    CHECK_ALPHABET,
    clean_upns,
    harmonise_sex,
    normalise_postcodes,
    parse_dates,
    source_codes,
    upn_check_letter,
    upn_is_valid,
)

REAL_LA = [f"{n:03d}" for n in (201, 330, 801, 845, 893, 940)]


def reference_check_letter(body: str) -> str:
    """DOMAIN.md section 6, one character at a time (the test's own implementation)."""
    total = sum(position * (int(c) if c.isdigit() else CHECK_ALPHABET.index(c))
                for position, c in zip(range(2, 14), body, strict=True))
    return CHECK_ALPHABET[total % 23]


upn_bodies = st.builds(
    lambda la, rest, last: la + rest + last,
    st.sampled_from(REAL_LA),
    st.text("0123456789", min_size=8, max_size=8),
    st.sampled_from(list("0123456789") + list(CHECK_ALPHABET)),
)


@given(upn_bodies)
def test_a_upn_with_its_check_letter_is_valid(body):
    upn = reference_check_letter(body) + body
    assert upn_check_letter(pd.Series([upn])).iloc[0] == upn[0]
    assert upn_is_valid(pd.Series([upn]))[0]
    _, _, masks = clean_upns(pd.Series([upn.lower()]))
    assert not masks["upn_bad_check_letter"][0] and not masks["upn_bad_format"][0]
    assert masks["upn_temporary"][0] == body[-1].isalpha()


@given(upn_bodies, st.integers(1, 22))
def test_any_other_check_letter_is_caught(body, shift):
    right = reference_check_letter(body)
    wrong = CHECK_ALPHABET[(CHECK_ALPHABET.index(right) + shift) % 23]
    _, _, masks = clean_upns(pd.Series([wrong + body]))
    assert masks["upn_bad_check_letter"][0]
    assert not upn_is_valid(pd.Series([wrong + body]))[0]


def test_domain_examples():
    valid = ["B801200005001", "H801200001001", "X845212818005", "H243278544154"]
    assert upn_is_valid(pd.Series(valid)).all()
    _, _, masks = clean_upns(pd.Series(["A801200005001", "R247962919251"]))
    assert masks["upn_bad_check_letter"].tolist() == [True, True]


@given(st.text(max_size=20))
def test_any_text_as_a_upn_is_exactly_one_of_valid_unknown_or_flagged(value):
    _, unknown, masks = clean_upns(pd.Series([value]))
    problems = [code for code in ("upn_missing", "upn_bad_format", "upn_bad_check_letter")
                if masks[code][0]]
    outcomes = [bool(upn_is_valid(pd.Series([value]))[0]), unknown.iloc[0] != "",
                bool(problems)]
    assert sum(outcomes) == 1, (value, outcomes)


@given(st.sampled_from(["UN1", "UN2", "UN3", "UN4", "UN5", "un4 "]))
def test_un_codes_are_no_upn(code):
    upn, unknown, masks = clean_upns(pd.Series([code]))
    assert upn.iloc[0] == ""
    assert unknown.iloc[0] == code.strip().upper()
    assert not masks["upn_missing"][0]


FORMATS = {"ssda903": "%d/%m/%Y", "cin": "%Y-%m-%d", "school-census": "%Y-%b-%d %H:%M:%S"}


@given(st.dates(dt.date(1990, 1, 1), dt.date(2030, 12, 31)),
       st.sampled_from(sorted(FORMATS)))
def test_dates_round_trip_in_each_collections_format(day, kind):
    written = day.strftime(FORMATS[kind])
    formats = source_codes()["date_formats"][kind]
    parsed, missing, unreadable = parse_dates(pd.Series([written]), formats)
    assert parsed.iloc[0].date() == day
    assert not missing[0] and not unreadable[0]


@given(st.text(max_size=30))
@settings(max_examples=200)
def test_any_text_as_a_date_is_a_date_or_flagged(value):
    parsed, missing, unreadable = parse_dates(pd.Series([value]), ["%d/%m/%Y", "%Y-%m-%d"])
    assert pd.notna(parsed.iloc[0]) or missing[0] or unreadable[0]
    assert not (missing[0] and unreadable[0])


@given(st.sampled_from(["ssda903", "cin", "school-census", "asg-children"]), st.data())
def test_every_code_of_a_collection_maps_to_m_f_or_u(kind, data):
    code_set = source_codes()["sex"][kind]
    code = data.draw(st.sampled_from(sorted(code_set)))
    spaced = data.draw(st.sampled_from(["{}", " {} ", "{}  "])).format(code)
    sex, masks = harmonise_sex(pd.Series([spaced.lower()]), code_set)
    assert sex.iloc[0] == code_set[code] and sex.iloc[0] in {"M", "F", "U"}
    assert not masks["sex_invalid"][0]


@given(st.text(max_size=10))
def test_unknown_sex_codes_become_u_and_are_flagged(value):
    code_set = source_codes()["sex"]["ssda903"]
    sex, masks = harmonise_sex(pd.Series([value]), code_set)
    assert sex.iloc[0] in {"M", "F", "U"}
    known = value.strip().upper() in {str(k).upper() for k in code_set}
    assert masks["sex_invalid"][0] == (not known and value.strip() != "")


@given(st.sampled_from(["LS12 3AB", "ls12 3ab", "LS123AB", " ls12  3ab ", "B1 1AA", "EC1A1BB"]))
def test_postcodes_normalise_to_one_form(value):
    normal, masks = normalise_postcodes(pd.Series([value]))
    compact = value.replace(" ", "").upper()
    assert normal.iloc[0] == compact[:-3] + " " + compact[-3:]
    assert masks["postcode_reformatted"][0] == (normal.iloc[0] != value.strip())
