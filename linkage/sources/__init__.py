"""Readers of every source, returning canonical records with validation flags.

``read_source`` is the one entry point: it picks the reader for a source kind.
"""

from pathlib import Path

from linkage.sources.asg import read_asg
from linkage.sources.cin import read_cin
from linkage.sources.generic import load_mapping, read_generic
from linkage.sources.provider_codes import with_provider_codes
from linkage.sources.record_ids import unique_record_ids
from linkage.sources.schema import SOURCE_KINDS, SourceData, SourceError
from linkage.sources.school_census import read_school_census
from linkage.sources.ssda903 import read_ssda903

__all__ = ["SOURCE_KINDS", "SourceData", "SourceError", "read_source"]


def read_source(kind: str, paths: list[Path], mapping: Path | None = None,
                provider: str | None = None, period: int | None = None) -> SourceData:
    """Read one provider's files of one source kind into canonical records, every provider
    code in one spelling (``RAA01`` whether typed ``raa01`` or ``RAA01``)."""
    data = unique_record_ids(_read(kind, paths, mapping, provider, period))
    data.provider = provider  # recorded in the bundle even when the files hold no records
    return with_provider_codes(data)


def _read(kind: str, paths: list[Path], mapping: Path | None, provider: str | None,
          period: int | None) -> SourceData:
    if kind not in SOURCE_KINDS:
        raise SourceError(kind, f"is not a source kind ({', '.join(SOURCE_KINDS)})")
    if kind == "generic":
        if mapping is None:
            raise SourceError("--mapping", "is required for a generic source")
        return read_generic(paths, load_mapping(mapping), provider, period)
    if mapping is not None:
        raise SourceError("--mapping", f"applies to generic sources only, not {kind}")
    if kind == "ssda903":
        return read_ssda903(paths, provider, period)
    if kind == "cin":
        return read_cin(paths, provider, period)
    if kind == "school-census":
        return read_school_census(paths, provider, period)
    return read_asg(kind, paths, provider, period)
