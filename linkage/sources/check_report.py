"""The data-quality report of `linkage check`: counts by problem, never identifier values."""


from linkage.sources.schema import FLAGS, IDENTIFIER_COLUMNS, REJECTING, SourceData

EXAMPLE_ROWS = 5
FIELDS_BY_KIND = {
    "ssda903": ["upn", "dob", "sex", "postcode", "ethnicity"],
    "cin": ["upn", "former_upn", "dob", "sex", "ethnicity"],
    "school-census": ["upn", "former_upn", "dob", "sex", "postcode", "forename", "surname",
                      "ethnicity"],
    "asg-children": ["dob", "sex", "ethnicity"],
    "asg-adopters": ["dob", "sex", "ethnicity"],
}


def check_report(data: SourceData) -> dict:
    """Counts of records and of each problem, with the file and row of the first few."""
    records = data.records
    flags = records["flags"]
    exploded = (records.assign(flag=flags.str.split(";"))[flags != ""]
                .explode("flag")[["flag", "file", "row"]])
    counts = exploded.flag.value_counts()
    examples = {
        code: data.details.get(code, [])[:EXAMPLE_ROWS]
        or [f"{row.file}:{row.row}" for row in group.head(EXAMPLE_ROWS).itertuples()]
        for code, group in exploded.groupby("flag", sort=True)
    }
    rejected = flags.str.split(";").map(lambda codes: bool(REJECTING & set(codes)))
    fields = FIELDS_BY_KIND.get(data.kind) or [
        name for name in data.field_kinds if name in IDENTIFIER_COLUMNS]
    completeness = {
        field: round(float((records[field].astype(str) != "").mean()), 4) if len(records) else 0.0
        for field in fields
        if field in records
    }
    return {
        "source": data.kind,
        "files": len(data.files),
        "files_ignored": len(data.ignored),
        "records_in": len(records),
        "records_out": len(records),
        "records_rejected": int(rejected.sum()),
        "records_flagged": int((flags != "").sum()),
        "flags": {code: int(counts[code]) for code in sorted(counts.index)},
        "flag_meanings": {code: FLAGS[code].meaning for code in sorted(counts.index)},
        "flag_rows": examples,
        "completeness": completeness,
        "records_by_period": {str(k): int(v) for k, v in
                              records.period.value_counts().sort_index().items()},
    }


def render_markdown(report: dict) -> str:
    """The report as Markdown, for a provider to read or attach to a ticket."""
    lines = [
        f"# Data-quality report: {report['source']}",
        "",
        f"- files read: {report['files']} (ignored: {report['files_ignored']})",
        f"- records in: {report['records_in']:,}; records out: {report['records_out']:,}",
        f"- records flagged: {report['records_flagged']:,}; "
        f"rejected (cannot be linked): {report['records_rejected']:,}",
        "",
        "## Problems",
        "",
        "| flag | records | meaning | first rows |",
        "|---|---:|---|---|",
    ]
    for code, count in report["flags"].items():
        rows = ", ".join(report["flag_rows"].get(code, []))
        lines.append(f"| {code} | {count:,} | {report['flag_meanings'][code]} | {rows} |")
    lines += ["", "## Completeness", "", "| field | share filled |", "|---|---:|"]
    for field, share in report["completeness"].items():
        lines.append(f"| {field} | {share:.1%} |")
    return "\n".join(lines) + "\n"
