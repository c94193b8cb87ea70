"""The canonical record every reader returns, and the problems a record can be flagged with."""

from dataclasses import dataclass, field

import pandas as pd

# One row per source record; identifiers harmonised; ``flags`` holds the problem codes found.
IDENTIFIER_COLUMNS = [
    "upn", "former_upn", "upn_unknown", "dob", "sex", "postcode", "forename", "middle_names",
    "surname", "preferred_surname", "former_surname", "ethnicity",
]
# The columns that name one record, everywhere (bundles, the model's input, the spine). The
# order is the order a bundle's rows are sorted in, so changing it changes every bundle's bytes.
RECORD_KEY = ["source", "provider", "period", "record_id"]
RECORD_COLUMNS = ["source", "provider", "record_id", "period", "file", "row",
                  *IDENTIFIER_COLUMNS, "flags"]


@dataclass(frozen=True)
class Source:
    """One source, by its two spellings: ``kind`` is what the CLI, bundle manifests and the
    linkage schema call it; ``name`` is the ``source`` value its records carry (in bundles,
    spines and extracts) and the key of its tables and code lists."""

    kind: str
    name: str
    la_return: bool = False  # returned by local authorities (their LA is the provider)


SOURCES = (
    Source("ssda903", "ssda903", la_return=True),
    Source("cin", "cin", la_return=True),
    Source("school-census", "school_census"),
    Source("asg-children", "asg_children"),
    Source("asg-adopters", "asg_adopters"),
    Source("generic", "generic"),
)
SOURCE_KINDS = [source.kind for source in SOURCES]
SOURCE_NAMES = [source.name for source in SOURCES]
# the sources the toolkit reads itself, without a mapping
STANDARD_SOURCE_NAMES = tuple(name for name in SOURCE_NAMES if name != "generic")
LA_SOURCES = tuple(source.name for source in SOURCES if source.la_return)
# the same, as an SQL list (model SQL is saved with the model: its text must not change)
LA_SOURCES_SQL = "(" + ", ".join(f"'{name}'" for name in LA_SOURCES) + ")"
# children looked after or adopted: the records sibling groups and adoptions are built from
CHILD_SOURCES = ("ssda903", "asg_children")
_NAME_OF_KIND = {source.kind: source.name for source in SOURCES}
_KIND_OF_NAME = {source.name: source.kind for source in SOURCES}


def source_name(kind: str) -> str:
    """The ``source`` value records of a source ``kind`` carry (asg-children -> asg_children)."""
    try:
        return _NAME_OF_KIND[kind]
    except KeyError:
        raise ValueError(f"not a source kind: {kind} ({', '.join(SOURCE_KINDS)})") from None


def source_kind(name: str) -> str:
    """The source kind whose records carry ``source`` value ``name`` (the inverse)."""
    try:
        return _KIND_OF_NAME[name]
    except KeyError:
        raise ValueError(f"not a source name: {name} ({', '.join(SOURCE_NAMES)})") from None


FIELD_KINDS = ["exact", "date", "name", "text", "postcode", "category", "sex"]


@dataclass(frozen=True)
class Flag:
    code: str
    meaning: str
    rejects: bool = False  # the record cannot be linked at all (kept, and counted as rejected)


_FLAGS = [
    Flag("record_id_missing", "the provider's own record id is blank", rejects=True),
    Flag("record_id_duplicate", "the same record id on more than one record of one return "
         "(each kept, its id given a suffix ~2, ~3)"),
    Flag("row_malformed", "the row has more or fewer fields than the header (kept as read)"),
    Flag("quote_unbalanced", "a quote in the row never closes: the row was read by itself, "
         "split at every comma (the rows after it are read as usual)"),
    Flag("encoding_mixed", "the row is in Windows-1252 in a file otherwise in UTF-8: read as "
         "Windows-1252 (its names kept as written)"),
    Flag("upn_missing", "no UPN and no UN code"),
    Flag("upn_unknown_UN1", "UN1: not yet of school age, or no UPN issued"),
    Flag("upn_unknown_UN2", "UN2: never attended a maintained school in England"),
    Flag("upn_unknown_UN3", "UN3: educated outside England"),
    Flag("upn_unknown_UN4", "UN4: newly looked after, UPN not yet obtained"),
    Flag("upn_unknown_UN5", "UN5: identity discrepancies prevent reliable matching"),
    Flag("upn_unknown_UN6", "UN6 (CIN only)"),
    Flag("upn_unknown_UN7", "UN7: referral with no further action (CIN only)"),
    Flag("upn_bad_format", "UPN is not a letter, 11 digits and a digit or letter"),
    Flag("upn_bad_check_letter", "UPN check letter does not match its digits"),
    Flag("upn_bad_la", "UPN's LA number is not on the LA list (the UPN is still used)"),
    Flag("upn_temporary", "temporary UPN (ends in a letter)"),
    Flag("upn_duplicate", "the same UPN on more than one record of one provider's return"),
    Flag("former_upn_invalid", "former UPN is not a valid UPN (dropped)"),
    Flag("dob_missing", "no date of birth"),
    Flag("dob_invalid", "date of birth cannot be read as a date"),
    Flag("dob_after_collection", "date of birth after the end of the collection year"),
    Flag("dob_over_25", "child over 25 at the end of the collection year"),
    Flag("dob_inconsistent", "a 903 table repeats a different DOB from the Header's"),
    Flag("dob_after_first_episode", "date of birth after the child's first 903 episode"),
    Flag("unborn", "unborn child: expected date of birth only"),
    Flag("sex_missing", "no sex recorded"),
    Flag("sex_invalid", "sex code not in the collection's code set"),
    Flag("sex_unknown", "sex recorded as unknown, indeterminate or not recorded"),
    Flag("postcode_reformatted", "postcode normalised (case, spacing)"),
    Flag("postcode_invalid", "postcode is not in a UK postcode format (dropped)"),
    Flag("ethnicity_invalid", "ethnicity not in the code set"),
    Flag("date_invalid", "an event date cannot be read as a date (that date dropped)"),
    Flag("dual_registration", "subsidiary school registration (enrolstatus S)"),
    Flag("code_unknown", "a 903 code (placement, reason for new episode or for ceasing, legal "
         "status) outside its collection year's code set; the field and row are listed"),
    Flag("column_absent", "a 903 table of an older layout lacks a column of today's (that "
         "field is blank); the file and columns are listed"),
]
FLAGS: dict[str, Flag] = {flag.code: flag for flag in _FLAGS}
REJECTING = {code for code, flag in FLAGS.items() if flag.rejects}


@dataclass
class SourceData:
    """What a reader returns: canonical records, and the content tables later stages need."""

    kind: str
    records: pd.DataFrame
    content: dict[str, pd.DataFrame] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)  # files read but not used (other tables)
    field_kinds: dict[str, str] = field(default_factory=dict)  # generic sources: name -> kind
    # generic sources: the record columns of identifying fields outside the canonical ones,
    # and their kinds; and the columns (canonical or not) whose fields describe one thing (an
    # address), compared as one
    token_fields: dict[str, str] = field(default_factory=dict)
    field_groups: dict[str, str] = field(default_factory=dict)
    provider: str | None = None  # the provider named when the files were read
    dataset: str | None = None  # generic sources: the name researchers request it by
    # where a flag's problem lies when that is not the record's own row (flag -> "file:row FIELD")
    details: dict[str, list[str]] = field(default_factory=dict)

    @property
    def records_in(self) -> int:
        return len(self.records)


class SourceError(Exception):
    """A file cannot be used at all: the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")
        self.path = str(path)
        self.problem = problem
