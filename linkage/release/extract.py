"""`linkage extract`: one project's extract from the spine and the bundles' content.

Everything is written to a temporary folder beside ``out`` and moved into place at the end,
so a failed run leaves nothing half-written. Keys are the project's own pseudonyms; persons
carry year and month of birth only; tables pass disclosure control; a manifest lists the
request, the spine version, row counts, checksums and what disclosure control did.
"""

import json
from datetime import datetime
from pathlib import Path

import pandas as pd

from linkage.config import load_config
from linkage.pseudonymise.bundle import OpenedBundle, open_bundles
from linkage.pseudonymise.keys import load_key
from linkage.pseudonymise.roles import LinkageUnitKeys
from linkage.pseudonymise.roles import release_secret as custodian_release_secret
from linkage.release.cohorts import (
    CARE_EVENT_SOURCES,
    EVENT_TABLES,
    cohort,
    events_of,
    periods_needed,
)
from linkage.release.content import content_tables, generic_datasets, with_persons
from linkage.release.disclosure import TOTAL, protect, rounded
from linkage.release.education import education_linkage
from linkage.release.outputs import Built, csv_safe, write_extract  # noqa: F401 (csv_safe: re-exported)
from linkage.release.pseudonyms import project_secret, pseudonyms
from linkage.release.request import Request, check_generic
from linkage.release.tables import TableInputs, strategy_tables
from linkage.sources.schema import SOURCE_NAMES
from linkage.spine.store import (
    config_fingerprint,
    connect,
    current_records,
    current_version,
    family_tables,
    record_audit,
    writable,
)

PERSON_FIELDS = ["birth_year_month", "sex", "ethnicity"]
STATA_EPOCH = datetime(1960, 1, 1)
MISSING_SHOWN = 5  # bundles named in the message when some are missing; the rest counted


class ReleaseError(Exception):
    """The extract cannot be made; the message says why, never with a value."""


def extract(spine: Path, request: Request, out: Path, bundle_paths: list[Path],
            keys: LinkageUnitKeys, release_key: Path | None = None) -> dict:
    """Write the project's extract to ``out``; returns the manifest (with the exact cohort
    counts under ``operator``, for the TRE operator only: they are not written).

    ``keys`` are the data custodian's: its private key opens the bundles' content parts, and
    the release secret derives from it unless a separate ``release_key`` file is given."""
    if keys.custodian_key is None:
        raise ReleaseError("an extract needs the data custodian's private key "
                           "(--custodian-key or LINKAGE_CUSTODIAN_KEY)")
    if out.exists() and any(out.iterdir()):
        raise ReleaseError(f"{out}: exists and is not empty; an extract is never overwritten")
    con = connect(spine, read_only=True)
    try:
        version = current_version(con)
        if version == 0:
            raise ReleaseError(f"{spine}: has no linked version yet; run linkage link first")
        records, families = current_records(con), family_tables(con)
    finally:
        con.close()
    _check_period(request, records)
    release = (load_key(release_key, "release key") if release_key
               else custodian_release_secret(keys.custodian_key))
    bundles = open_bundles(bundle_paths, keys)
    _check_linked(bundles, spine, version)
    check_generic(request, generic_datasets(bundles), load_config("release.yaml"))
    secret = project_secret(release, request.project)
    built = _build(request, records, families, bundles, secret)
    manifest = {"project": request.project, "request": request.raw,
                "spine_version": version, "files": {}, "disclosure": built.pop("disclosure")}
    operator = built.pop("operator")
    write_extract(out, Built(built["parquet"], built["csv"], built["sources"]), manifest,
                  _version_made(spine, version))
    # a spine on a read-only mount can still be read; the operator is told the audit line
    # is missing (the extract's own manifest.json then is the record)
    operator["audit_logged"] = writable(spine)
    if operator["audit_logged"]:
        con = connect(spine)
        try:
            record_audit(con, "extract", version,
                         {"project": request.project, "request": request.raw,
                          "bundles": [b.manifest["parts"]["content"]["sha256"]
                                      for b in bundles]},
                         config_fingerprint(),
                         {"out": str(out), "files": manifest["files"]})
        finally:
            con.close()
    return {**manifest, "operator": operator}


def _check_period(request: Request, records: pd.DataFrame) -> None:
    """Refuse a period the spine holds no returns for: its cohort would be counted from
    whatever episodes happen to reach into it (an extract for 2035 once gave 346 children,
    some aged 28). Every collection year the cohort looks back over must be covered."""
    sources = CARE_EVENT_SOURCES if request.cohort != "all" else tuple(sorted(set(records.source)))
    held = sorted({int(p) for p in records.period[records.source.isin(sources)].unique()})
    missing = [p for p in periods_needed(request.cohort, request.period) if p not in held]
    if missing:
        covered = _year_ranges(held) or "no year"
        raise ReleaseError(
            f"{request.path}: period: {request.period} cannot be answered from this spine: "
            f"cohort {request.cohort} needs the returns ({', '.join(sources)}) of "
            f"{_year_ranges(missing)}, and the spine holds such returns for {covered} only; "
            "ask for a period the spine covers")


def _year_ranges(years: list[int]) -> str:
    """``2020-2022, 2024`` for [2020, 2021, 2022, 2024]."""
    runs: list[list[int]] = []
    for year in years:
        if runs and year == runs[-1][-1] + 1:
            runs[-1].append(year)
        else:
            runs.append([year])
    return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def _check_linked(bundles: list[OpenedBundle], spine: Path, version: int) -> None:
    con = connect(spine, read_only=True)
    try:
        inputs = json.loads(con.execute("SELECT inputs FROM spine_version WHERE version = ?",
                                        [version]).fetchall()[0][0])
    finally:
        con.close()
    linked = {entry.get("linkage_part_sha256") for entry in inputs}
    given = {bundle.manifest["parts"]["linkage"]["sha256"] for bundle in bundles}
    for bundle in bundles:
        if bundle.manifest["parts"]["linkage"]["sha256"] not in linked:
            raise ReleaseError(f"{bundle.name}: was not linked into spine version {version}; "
                               "give the bundles that version was linked from")
    # a cohort counted from some of the bundles would be silently too small
    missing = sorted(str(entry.get("bundle")) for entry in inputs
                     if entry.get("linkage_part_sha256") not in given)
    if missing:
        shown = ", ".join(missing[:MISSING_SHOWN]) + (
            f" and {len(missing) - MISSING_SHOWN} more" if len(missing) > MISSING_SHOWN else "")
        raise ReleaseError(f"{spine}: version {version} was linked from {len(inputs)} bundles "
                           f"and {len(missing)} of them were not given ({shown}); give every "
                           "bundle the version was linked from, since a part of them cannot "
                           "give a right answer")


def _version_made(spine: Path, version: int) -> datetime:
    """When the spine version was linked: the Stata files' time stamp, so the same extract of
    the same version gives the same bytes."""
    con = connect(spine, read_only=True)
    try:
        made = con.execute("SELECT created_at FROM spine_version WHERE version = ?",
                           [version]).fetchall()[0][0]
    finally:
        con.close()
    try:
        return datetime.fromisoformat(made).replace(tzinfo=None)
    except (TypeError, ValueError):
        # a version without its time (a spine made before versions recorded one) still gives
        # the same bytes every time, stamped with the first moment Stata's format can hold
        return STATA_EPOCH


def _wanted_tables(request: Request, catalogue: dict) -> dict[str, set[str]]:
    # generic records give persons their month of birth, sex and ethnicity too; a generic
    # dataset's own rows are read per dataset (_generic_content)
    wanted = {source: {"record"} for source in SOURCE_NAMES}
    for source, table in (*EVENT_TABLES, *TABLE_CONTENT):  # cohorts and tables count these
        wanted[source].add(table)
    for dataset, fields in request.datasets.items():
        if dataset in request.generic:
            continue
        spec = catalogue["datasets"][dataset]
        wanted[spec["source"]] |= {spec["fields"][f].split(".")[0] for f in fields}
    return wanted


def _generic_content(request: Request, bundles: list[OpenedBundle], records: pd.DataFrame,
                     catalogue: dict) -> tuple[dict, dict]:
    """Each requested generic dataset as a catalogue entry of its own (its ``fields`` content
    table, one column per field) and its rows joined to the spine's persons, under the
    content key ``generic:<dataset>``: bundles of other generic datasets are not mixed in."""
    datasets, content = dict(catalogue["datasets"]), {}
    for name in request.generic:
        source = f"generic:{name}"
        datasets[name] = {"source": source,
                          "fields": {f: f"fields.{f}" for f in request.datasets[name]}}
        holding = [b for b in bundles if b.manifest["source"] == "generic"
                   and b.manifest.get("dataset") == name]
        rows = content_tables(holding, {"generic": {"fields"}}).get(("generic", "fields"))
        if rows is not None:
            content[(source, "fields")] = with_persons(rows, records)
    return {**catalogue, "datasets": datasets}, content


def _build(request: Request, records: pd.DataFrame, families: dict, bundles, secret) -> dict:
    catalogue = load_config("release.yaml")
    rules = load_config("disclosure.yaml")
    content = {key: with_persons(rows, records)
               for key, rows in content_tables(bundles, _wanted_tables(request,
                                                                       catalogue)).items()}
    catalogue, generic = _generic_content(request, bundles, records, catalogue)
    content.update(generic)
    events = events_of(content)
    members, per_la = cohort(events, request.cohort, request.period, records.person_key)
    members = set(members)
    attributes = _person_attributes(content)
    person = lambda keys: pseudonyms(secret, "person", keys)  # noqa: E731

    files: dict[str, pd.DataFrame] = {}
    people = attributes[attributes.index.isin(members)].reset_index()
    files["persons"] = people.assign(person=person(people.person_key))[
        ["person", *PERSON_FIELDS]].sort_values("person", ignore_index=True)
    links = families["child_adopter_link"]
    links = links[links.child_person_key.isin(members)]
    households = families["adopter_household"]
    households = households[households.household_key.isin(links.household_key)]
    sources: dict[str, dict[str, tuple[str, str, str]]] = {}  # for the codebook
    for dataset, fields in request.datasets.items():
        files.update(_dataset_files(dataset, fields, catalogue, content, members,
                                    set(households.person_key), person, sources))
    if request.family_keys:
        files.update(_family_files(families, links, households, members, attributes, secret))

    csvs, disclosure = strategy_tables(_table_inputs(request, members, attributes, events,
                                                     families, content), rules)
    education = education_linkage(members, content, records, catalogue["education_linkage"])
    by_la, national = _cohort_tables(per_la, education, request, rules)
    csvs["tables/cohort_by_la.csv"], disclosure["cohort_by_la"] = by_la.table, by_la.actions
    csvs["tables/cohort_national.csv"] = national
    disclosure["cohort_national"] = {"rounded_to": rules["national_rounding"]}
    operator = {"cohort": request.cohort, "period": request.period,
                "deduplicated": len(members), "naive_sum_of_las": int(per_la.sum()),
                "education_linkage": education}
    return {"parquet": files, "csv": csvs, "sources": sources, "disclosure": disclosure,
            "operator": operator}


TABLE_CONTENT = [("ssda903", "ad1"), ("ssda903", "placed_adoption"),
                 ("asg_children", "asg_children"), ("asg_adopters", "asg_adopters")]


def _table_inputs(request: Request, members: set, attributes: pd.DataFrame, events,
                  families: dict, content: dict) -> TableInputs:
    """What the summary tables are counted from (every household's adopters included: the
    tables count those waiting, and no row of theirs is released)."""
    groups = families["sibling_group"]
    groups = groups[groups.sibling_group_key.isin(
        groups[groups.person_key.isin(members)].sibling_group_key)]
    empty = pd.DataFrame(columns=["person_key"])
    rows = {table: content.get((source, table), empty) for source, table in TABLE_CONTENT}
    return TableInputs(members=members, period=request.period, ethnicity=attributes.ethnicity,
                       episodes=events.episodes, links=families["child_adopter_link"],
                       households=families["adopter_household"], sibling_groups=groups,
                       **rows)


def _person_attributes(content: dict) -> pd.DataFrame:
    """Per person: the most common year-month of birth, sex and ethnicity over their records."""
    rows = pd.concat([frame for (source, table), frame in content.items() if table == "record"],
                     ignore_index=True)
    out = {}
    for field in PERSON_FIELDS:
        values = rows[["person_key", field]].replace("", pd.NA).dropna()
        counts = values.groupby(["person_key", field]).size().rename("n").reset_index()
        counts = counts.sort_values(["person_key", "n", field], ascending=[True, False, True])
        out[field] = counts.drop_duplicates("person_key").set_index("person_key")[field]
    index = pd.Index(sorted(set(rows.person_key)), name="person_key")
    return pd.DataFrame({f: out[f].reindex(index) for f in PERSON_FIELDS}, index=index)


def _dataset_files(dataset: str, fields: list[str], catalogue: dict, content: dict,
                   members: set, adopters: set, person, sources: dict) -> dict:
    """The files of one requested dataset (one per content table its fields come from): a
    row per record of a cohort member (of an adopter, for ``asg_adopters``). ``sources`` gains
    each field's (source, content table, content column), which the codebook names."""
    spec = catalogue["datasets"][dataset]
    by_table: dict[str, list[tuple[str, str]]] = {}
    for field in fields:
        table, column = spec["fields"][field].split(".", 1)  # a generic field may hold a dot
        by_table.setdefault(table, []).append((field, column))
    wanted = adopters if spec["source"] == "asg_adopters" else members
    files = {}
    for table, columns in by_table.items():
        rows = content.get((spec["source"], table), pd.DataFrame(columns=["person_key"]))
        rows = rows[rows.person_key.isin(wanted)]
        frame = pd.DataFrame({"person": person(rows.person_key),
                              "provider": rows.get("provider"), "period": rows.get("period")})
        for field, column in columns:
            frame[field] = rows.get(column, pd.NA)
        name = dataset if len(by_table) == 1 else f"{dataset}_{table}"
        sources[name] = {field: (spec["source"], table, column) for field, column in columns}
        files[name] = frame.sort_values(["person", "period", *frame.columns[3:]],
                                        ignore_index=True, na_position="last")
    return files


def _family_files(families, links, households, members, attributes, secret) -> dict:
    groups = families["sibling_group"]
    groups = groups[groups.person_key.isin(members)]
    person = lambda keys: pseudonyms(secret, "person", keys)  # noqa: E731
    return {
        "sibling_groups": pd.DataFrame({
            "sibling_group": pseudonyms(secret, "sibling_group", groups.sibling_group_key),
            "person": person(groups.person_key), "confidence": groups.confidence,
            "group_size": groups.group_size}).sort_values(["sibling_group", "person"],
                                                          ignore_index=True),
        "adoptions": pd.DataFrame({
            "person": person(links.child_person_key),
            "household": pseudonyms(secret, "household", links.household_key),
            "confidence": links.confidence}).sort_values(["person", "household"],
                                                         ignore_index=True),
        "adopters": pd.DataFrame({
            "household": pseudonyms(secret, "household", households.household_key),
            "adopter": person(households.person_key),
            "sex": households.person_key.map(attributes.sex),
            "ethnicity": households.person_key.map(attributes.ethnicity),
            "adopters_in_household": households.adopters,
            "relationship_status": households.relationship_status,
        }).sort_values(["household", "adopter"], ignore_index=True),
    }


def _cohort_tables(per_la: pd.Series, education: dict[str, int], request: Request,
                   rules: dict):
    """The cohort by LA (suppressed) and nationally (rounded): each LA's own count, the
    deduplicated count, and the shares that cannot be followed into education data, each
    percentage from the unrounded counts and hidden where its count is suppressed."""
    counts = per_la.to_frame("children")
    counts.index = [f"LA {code}" for code in counts.index]
    by_la = protect(counts, rules)
    # one column: its row total repeats it; the national total is rounded, below
    by_la.table = by_la.table.drop(index=TOTAL, columns=TOTAL, errors="ignore")
    naive, deduplicated = int(per_la.sum()), education["children"]
    measures = {
        "sum of each LA's own count": naive,
        "children, deduplicated across LAs": deduplicated,
        "counted by more than one LA": naive - deduplicated,
        "children with no usable UPN (excluded from education linkage)":
            education["no_usable_upn"],
        "children linked to no pupil record": education["not_linked_to_pupil_data"],
    }
    national = pd.DataFrame({"measure": list(measures),
                             "children": rounded(list(measures.values()), rules)})
    national["percent_of_cohort"] = [
        _share(count, deduplicated, rules) if i >= 2 else "" for i, count in
        enumerate(measures.values())]
    national.insert(0, "cohort", request.cohort)
    national.insert(1, "period", request.period)
    return by_la, national


def _share(part: int, whole: int, rules: dict) -> str:
    """``part`` as a whole percentage of ``whole``, from the exact counts; hidden where either
    would be suppressed."""
    if whole < rules["min_count"] or 0 < part < rules["min_count"]:
        return rules["hidden_percentage"]
    return f"{100 * part / whole:.0f}"
