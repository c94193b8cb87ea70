"""Every identifier value a synthetic world's providers hold, for leak scans of outputs."""

from pathlib import Path

from linkage.pipelines.delivery import folder_entries
from linkage.sources import read_source


def world_identifiers(world_dir: Path) -> tuple[set[str], set[str]]:
    """UPNs, postcodes, names and provider record ids (4 characters or more); and full DOBs."""
    values, dobs = set(), set()
    for entry in folder_entries(world_dir / "providers"):
        records = read_source(entry.source, list(entry.paths), entry.mapping, entry.provider,
                              entry.period).records
        for column in ("upn", "former_upn", "postcode", "forename", "surname", "record_id"):
            if column in records:
                values |= {str(v) for v in records[column].dropna() if len(str(v)) >= 4}
        dobs |= {str(v)[:10] for v in records.dob.dropna() if len(str(v)) >= 10}
    return values, dobs


def public_label_words() -> set[str]:
    """The words of the ethnic groups' labels (White, Black, ...): public vocabulary a report
    shows, though some are surnames too, so an identifier scan does not count them."""
    from linkage.config import load_config

    config = load_config("ethnic_groups.yaml")
    labels = [*config["groups"], *(entry["label"] for entry in config["codes"].values())]
    return {word.strip(",") for label in labels for word in label.split()}
