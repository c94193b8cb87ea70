"""Writing an extract: microdata in every configured format, tables as CSV, a codebook, and
the manifest.

Every microdata file is written as Parquet, CSV and Stata ``.dta`` (``outputs.formats`` in
configs/release.yaml), with the same rows in the same order and the same values; dates are
ISO text (YYYY-MM-DD) in all three, so no format converts them differently. ``codebook.csv``
has a row per file and column: its meaning, its codes with labels (configs/codebook.yaml), its
source table and its name in Stata. Everything is written to a folder beside ``out`` and moved
into place at the end, so a failed run leaves nothing half-written.
"""

import json
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pandas as pd

from linkage.atomic import writing
from linkage.config import load_config
from linkage.pseudonymise.bundle import sha256_file, write_parquet

SUFFIXES = {"parquet": ".parquet", "csv": ".csv", "stata": ".dta"}
DEFAULT_FORMATS = ["parquet", "csv", "stata"]
STATA_VERSION = 118        # the first version to hold UTF-8 text
STATA_NAME_MOST = 32       # Stata's limits on a variable's name, its label and the data label
STATA_LABEL_MOST = 80
STATA_STR_MOST = 2045      # longer text must go in a strL
# words Stata keeps for itself: never a variable's name
STATA_RESERVED = {"_all", "_b", "byte", "_coef", "_cons", "double", "float", "if", "in", "int",
                  "long", "_n", "_N", "_pi", "_pred", "_rc", "_skip", "strL", "using", "with"}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CODEBOOK_COLUMNS = ["file", "column", "stata_name", "meaning", "codes", "source"]


@dataclass
class Built:
    """What an extract holds before it is written: microdata frames by file name, tables by
    their path under the extract (``tables/x.csv``), and the source of each dataset column
    (file -> column -> (source, content table, content column))."""

    microdata: dict[str, pd.DataFrame]
    tables: dict[str, pd.DataFrame]
    sources: dict[str, dict[str, tuple[str, str, str]]] = field(default_factory=dict)


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text that a spreadsheet would run as a formula (=, +, -, @ first) gets a leading
    apostrophe, in cells and labels alike; numbers are left as they are."""
    def safe(value):
        if isinstance(value, str) and value.startswith(FORMULA_STARTS):
            try:
                float(value)
            except ValueError:
                return "'" + value
        return value

    out = frame.map(safe)
    out.index = out.index.map(safe)
    out.columns = out.columns.map(safe)
    return out


def write_extract(out: Path, built: Built, manifest: dict, stamp: datetime) -> None:
    """Write the extract's files and its manifest into ``out`` (which must be empty or
    absent); ``stamp`` is the Stata files' time stamp, fixed so the bytes are repeatable."""
    # a full disk or a read-only folder is reported on the extract, not the staging name
    with writing(out):
        _write_staged(out, built, manifest, stamp)


def _write_staged(out: Path, built: Built, manifest: dict, stamp: datetime) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=out.parent))
    try:
        rows = _write_files(staging, built, manifest, stamp)
        for path in sorted(p for p in staging.rglob("*") if p.is_file()):
            relative = str(path.relative_to(staging))
            manifest["files"][relative] = {"rows": rows[relative], "sha256": sha256_file(path)}
        (staging / "manifest.json").write_text(
            json.dumps(manifest, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _write_files(folder: Path, built: Built, manifest: dict, stamp: datetime) -> dict[str, int]:
    """Every file of the extract but the manifest; returns each file's rows by its path."""
    codebook_config = load_config("codebook.yaml")
    formats = load_config("release.yaml").get("outputs", {}).get("formats", DEFAULT_FORMATS)
    rows: dict[str, int] = {}
    entries = []
    for name, frame in sorted(built.microdata.items()):
        entry = codebook_rows(name, frame, built.sources.get(name, {}), codebook_config)
        entries.append(entry)
        label = f"{manifest['project']}: {name}, spine version {manifest['spine_version']}"
        for fmt in formats:
            path = folder / f"{name}{SUFFIXES[fmt]}"
            WRITERS[fmt](frame, path, entry, label, stamp)
            rows[path.name] = len(frame)
    (folder / "tables").mkdir()
    for name, frame in sorted(built.tables.items()):
        table = with_row_column(name, frame, codebook_config)
        row_column = None if isinstance(frame.index, pd.RangeIndex) else table.columns[0]
        entries.append(table_codebook_rows(name, table, row_column, codebook_config))
        _write_csv(table, folder / name)
        rows[name] = len(table)
    codebook = pd.concat(entries, ignore_index=True)
    _write_csv(codebook, folder / "codebook.csv")
    rows["codebook.csv"] = len(codebook)
    return rows


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    csv_safe(frame).to_csv(path, index=False, lineterminator="\n")


def _parquet(frame, path, entry, label, stamp) -> None:
    write_parquet(frame, path)


def _csv(frame, path, entry, label, stamp) -> None:
    _write_csv(frame, path)


def _stata(frame: pd.DataFrame, path: Path, entry: pd.DataFrame, label: str,
           stamp: datetime) -> None:
    """A ``.dta`` of version 118: names made valid for Stata (the codebook's stata_name),
    labels from the codebook's meanings, blank text where Parquet holds a null (Stata has no
    null text), and the time stamp given, so the same extract gives the same bytes."""
    names = dict(zip(entry.column, entry.stata_name, strict=True))
    data = pd.DataFrame({names[c]: _stata_column(frame[c]) for c in frame.columns})
    long_text = [c for c in data.columns if data[c].dtype == object
                 and data[c].str.len().max() > STATA_STR_MOST]
    labels = dict(zip(entry.stata_name, entry.meaning.str[:STATA_LABEL_MOST], strict=True))
    data.to_stata(path, write_index=False, version=STATA_VERSION, time_stamp=stamp,
                  data_label=label[:STATA_LABEL_MOST], variable_labels=labels,
                  convert_strl=long_text)


def _stata_column(values: pd.Series) -> pd.Series:
    """A column as Stata can hold it: numbers as numbers (missing as Stata's missing), true
    and false as 1 and 0, everything else as text."""
    if pd.api.types.is_bool_dtype(values):
        return values.astype("int8")
    if pd.api.types.is_numeric_dtype(values):
        return values.astype("float64") if values.isna().any() else values
    return values.map(lambda v: "" if v is None or v is pd.NA or v != v else str(v),
                      na_action=None).astype(object)


WRITERS = {"parquet": _parquet, "csv": _csv, "stata": _stata}


def stata_names(columns: list[str]) -> dict[str, str]:
    """Each column's name in Stata: letters, digits and _ only, not starting with a digit, at
    most 32 characters, not a reserved word, and different from every other column's."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for column in columns:
        name = re.sub(r"[^A-Za-z0-9_]", "_", str(column)) or "v"
        if not re.match(r"[A-Za-z_]", name):
            name = f"v_{name}"
        if name in STATA_RESERVED:
            name = f"{name}_"
        name = name[:STATA_NAME_MOST]
        number = 1
        while name in taken:
            number += 1
            suffix = f"_{number}"
            name = name[:STATA_NAME_MOST - len(suffix)] + suffix
        names[column] = name
        taken.add(name)
    return names


def codebook_rows(name: str, frame: pd.DataFrame, sources: dict[str, tuple[str, str, str]],
                  config: dict) -> pd.DataFrame:
    """The codebook's rows of one microdata file: a row per column."""
    names = stata_names(list(frame.columns))
    rows = []
    for column in frame.columns:
        described, source = _described(column, sources.get(column), config)
        rows.append({"file": name, "column": column, "stata_name": names[column],
                     "meaning": described.get("meaning", "not described in "
                                              "configs/codebook.yaml"),
                     "codes": _code_list(described.get("codes", {})), "source": source})
    return pd.DataFrame(rows, columns=CODEBOOK_COLUMNS)


def _described(column: str, source: tuple[str, str, str] | None,
               config: dict) -> tuple[dict, str]:
    """A column's codebook entry and where it comes from: a dataset's field is described
    under its source (a generic dataset's under its name), the extract's own columns under
    ``columns``."""
    if source is None:
        return config["columns"].get(column, {}), config["columns"].get(column, {}).get(
            "source", "the extract (from the spine and every source's records)")
    source_name, table, content_column = source
    generic = source_name.startswith("generic:")
    key = source_name.split(":", 1)[1] if generic else source_name
    described = config["fields"].get(key, {}).get(content_column)
    if described is None and generic:
        described = {"meaning": f"category field {content_column} of the generic dataset "
                                f"{key}, as its provider's mapping defines it"}
    where = (f"generic dataset {key} (field {content_column})" if generic
             else f"{source_name} {table}.{content_column}")
    return described or {}, where


def _code_list(codes: dict[str, str]) -> str:
    return "; ".join(f"{code} = {label}" for code, label in codes.items())


def with_row_column(path: str, table: pd.DataFrame, config: dict) -> pd.DataFrame:
    """A summary table with its row labels as a named first column, not an index: a CSV then
    has no pandas index column and no blank header cell. The column is named by the table's
    index name, else by configs/codebook.yaml (``tables.rows``), else ``group``."""
    if isinstance(table.index, pd.RangeIndex):
        return table.reset_index(drop=True)
    stem = Path(path).stem
    name = table.index.name or config["tables"]["rows"].get(stem, "group")
    return table.rename_axis(name).reset_index()


def table_codebook_rows(path: str, table: pd.DataFrame, row_column: str | None,
                        config: dict) -> pd.DataFrame:
    """The codebook's rows of one summary table: its row column (``row_column``: what the
    rows are), columns the extract describes (cohort, period), and its count columns."""
    rows = []
    for column in map(str, table.columns):
        own = config["columns"].get(column)
        meaning = (f"what the table's rows are: {column.replace('_', ' ')}"
                   if column == row_column else own["meaning"] if own
                   else config["tables"]["cells"])
        # tables are CSV only: no Stata name
        rows.append({"file": path, "column": column, "stata_name": "", "meaning": meaning,
                     "codes": "", "source": "the cohort's records, after disclosure control"})
    return pd.DataFrame(rows, columns=CODEBOOK_COLUMNS)
