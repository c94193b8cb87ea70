"""What a bundle's manifest must hold before any stage reads it.

The manifest is signed, so a manifest that is malformed yet verifies was made so by a holder of
a provider's signing key (or a faulty tool): it is refused with the bundle, the field and the
problem named, rather than failing later inside linking or an extract. Entries a newer toolkit
may add are allowed; the ones this toolkit reads must be there, of the right type.
"""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from linkage.config_models import describe_errors
from linkage.sources.schema import SOURCE_KINDS

Count = Annotated[int, Field(ge=0)]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class _Open(BaseModel):
    """Exact types (no conversions); entries not named here are allowed."""

    model_config = ConfigDict(strict=True, extra="allow")


class Part(_Open):
    file: Annotated[str, Field(min_length=1)]
    sha256: Sha256
    rows: Count
    recipient: str


class Parts(_Open):
    linkage: Part
    content: Part


class Rows(_Open):
    # "in" is a Python keyword: the field is named by its alias
    in_: Count = Field(alias="in")
    out: Count
    flagged: Count
    rejected: Count


class Manifest(_Open):
    """The entries of manifest.json that linking, the report and extracts read."""

    bundle_format: int
    schema_version: int
    source: Literal[tuple(SOURCE_KINDS)]
    provider: list[str]
    periods: list[int]
    key_fingerprint: Annotated[str, Field(min_length=1)]
    rows: Rows
    parts: Parts
    token_kinds: dict[str, Literal["record", "token", "bloom", "event", "attribute"]]
    token_groups: dict[str, str] = {}
    name_agreement: dict[str, Any] = {}
    dataset: str | None = None
    field_kinds: dict[str, str] = {}


def check_manifest(manifest: dict, part_files: dict[str, str]) -> str | None:
    """The problem with a parsed manifest, as ``manifest.json: field: problem`` (naming the
    first few), or None when it can be used. ``part_files`` are the part files a bundle holds
    (part name to file name): each part must name its own. (A part's file is looked for only
    when it is read: the linkage unit may be sent the linkage parts alone.)"""
    try:
        Manifest.model_validate(manifest)
    except ValidationError as problem:
        return f"manifest.json: {describe_errors(problem, Manifest)}"
    for part, file in part_files.items():
        named = manifest["parts"][part]["file"]
        if named != file:
            return f"manifest.json: parts.{part}.file: must be {file} (found {named[:40]!r})"
    return None
