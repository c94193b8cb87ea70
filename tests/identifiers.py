"""Every identifier value a synthetic world's providers hold, for leak scans of outputs."""

from pathlib import Path

from linkage.pipelines.delivery import provider_jobs
from linkage.sources import read_source


def world_identifiers(world_dir: Path) -> tuple[set[str], set[str]]:
    """UPNs, postcodes, names and provider record ids (4 characters or more); and full DOBs."""
    values, dobs = set(), set()
    for kind, code, paths, _ in provider_jobs(world_dir / "providers"):
        records = read_source(kind, paths, provider=code).records
        for column in ("upn", "former_upn", "postcode", "forename", "surname", "record_id"):
            if column in records:
                values |= {str(v) for v in records[column].dropna() if len(str(v)) >= 4}
        dobs |= {str(v)[:10] for v in records.dob.dropna() if len(str(v)) >= 10}
    return values, dobs
