"""Reading providers' files: encodings, CSV quirks, safe XML, and which files a path holds."""

import csv
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from linkage.sources.schema import SourceError

ENCODINGS = ("utf-8-sig", "cp1252")
MAX_FIELD_CHARS = 100_000  # a field longer than this is not an identifier: the file is refused


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (with or without BOM), else Windows-1252."""
    try:
        data = path.read_bytes()
    except OSError as problem:
        raise SourceError(path, f"cannot be read ({problem.strerror or type(problem).__name__})") \
            from None
    if not data.strip():
        raise SourceError(path, "is empty")
    if b"\x00" in data[:4096]:
        raise SourceError(path, "is not a text file (it holds binary data)")
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SourceError(path, "is neither UTF-8 nor Windows-1252 text")


def read_csv_table(path: Path, lower_columns: bool = False) -> pd.DataFrame:
    """A CSV file as stripped text columns, plus ``line`` (the header is line 1) and
    ``malformed`` (the row had more or fewer fields than the header; kept, padded or cut).

    Blank lines are skipped; empty columns after the last named one are dropped.
    """
    reader = csv.reader(io.StringIO(read_text(path), newline=""))
    header: list[str] | None = None
    rows, lines, malformed = [], [], []
    try:
        for fields in reader:
            if not any(field.strip() for field in fields):
                continue
            if header is None:
                header = _header_names(path, fields)
                continue
            width = len(header)
            extra = fields[width:]
            malformed.append(len(fields) < width or any(f.strip() for f in extra))
            rows.append(fields[:width] + [""] * (width - len(fields)))
            lines.append(reader.line_num)
    except csv.Error as problem:
        raise SourceError(path, f"is not a readable CSV file (line {reader.line_num}: {problem})") \
            from None
    if header is None:
        raise SourceError(path, "has no header row")
    frame = _stripped_frame(path, header, rows)
    if lower_columns:
        frame.columns = [c.lower() for c in frame.columns]
    frame["line"] = np.array(lines, dtype=np.int64)
    frame["malformed"] = np.array(malformed, dtype=bool)
    return frame


def _stripped_frame(path: Path, header: list[str], rows: list[list[str]]) -> pd.DataFrame:
    """Columns of text with surrounding spaces removed (column-wise, in Arrow)."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in header]
    arrays = []
    for name, values in zip(header, columns, strict=True):
        stripped = pc.utf8_trim_whitespace(pa.array(values, type=pa.string()))
        longest = pc.max(pc.utf8_length(stripped)).as_py() or 0
        if longest > MAX_FIELD_CHARS:
            raise SourceError(path, f"has a field over {MAX_FIELD_CHARS:,} characters long "
                              f"(column {name})")
        arrays.append(stripped)
    return pa.Table.from_arrays(arrays, names=header).to_pandas()


def _header_names(path: Path, fields: list[str]) -> list[str]:
    names = [f.strip() for f in fields]
    while names and names[-1] == "":
        names.pop()  # a trailing comma after the last column name
    if "" in names:
        raise SourceError(path, f"has a column with no name (column {names.index('') + 1})")
    if len({n.lower() for n in names}) != len(names):
        raise SourceError(path, "has two columns with the same name")
    return names


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file (first non-blank line), stripped; reads only its start."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(65536)
    except OSError as problem:
        raise SourceError(path, f"cannot be read ({problem.strerror or type(problem).__name__})") \
            from None
    content = next((start.decode(e, errors="ignore") for e in ENCODINGS
                    if _decodes(start, e)), start.decode("cp1252", errors="replace"))
    first = next((line for line in content.splitlines() if line.strip()), "")
    if not first:
        return []
    try:
        names = next(csv.reader([first]))
    except csv.Error:
        return []
    return [name.strip() for name in names if name.strip()]


def _decodes(data: bytes, encoding: str) -> bool:
    try:
        data.decode(encoding)
    except UnicodeDecodeError as problem:
        # a multi-byte character cut at the end of the sample is not a decoding failure
        return problem.start >= len(data) - 3
    return True


def xml_root_name(path: Path) -> str:
    """The name of an XML file's root element, read from its first few kilobytes ('' if none)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(4096).decode("utf-8", errors="ignore")
    except OSError:
        return ""
    match = re.search(r"<([A-Za-z_][\w.\-]*)[\s>/]", re.sub(r"<[?!][^>]*>", "", start))
    return match.group(1) if match else ""


def parse_xml(path: Path):
    """The XML root element, parsed safely (no entity expansion, no external entities)."""
    content = read_text(path)
    try:
        return SafeET.fromstring(content.encode("utf-8"), forbid_dtd=True)
    except DefusedXmlException:
        raise SourceError(path, "uses XML entities or DTDs, which are refused for safety") \
            from None
    except SafeET.ParseError as problem:
        raise SourceError(path, f"is not well-formed XML ({problem})") from None


def files_under(paths: list[Path], suffixes: tuple[str, ...]) -> list[Path]:
    """The files given, and the files with these suffixes inside the folders given, sorted.

    Finding none is an error naming the paths.
    """
    found = []
    for path in paths:
        if path.is_dir():
            found += [p for p in path.rglob("*") if p.is_file()
                      and p.suffix.lower() in suffixes and not p.name.startswith(".")]
        elif path.is_file():
            found.append(path)
        else:
            raise SourceError(path, "no such file or folder")
    if not found:
        kinds = " or ".join(suffix.lstrip(".").upper() for suffix in suffixes)
        raise SourceError(", ".join(map(str, paths)), f"holds no {kinds} files")
    return sorted(set(found))


def provider_from_path(path: Path) -> str:
    """An LA code from a folder named like ``la_893`` on the path, or ''."""
    for part in reversed(path.parts):
        match = re.fullmatch(r"la_(\d{3})", part, flags=re.IGNORECASE)
        if match:
            return match.group(1)
    return ""


def year_from_path(path: Path) -> int | None:
    """A collection year from the nearest file or folder name that starts with one.

    ``2024`` and ``2024_pupils`` mean the year ending 31 March 2024; so does ``2023-24``.
    """
    for part in [path.stem, *reversed(path.parent.parts)]:
        span = re.match(r"((?:19|20)\d\d)[-_](\d\d)(?:$|[_\-. ])", part)
        if span and int(span.group(2)) == (int(span.group(1)) + 1) % 100:
            return int(span.group(1)) + 1
        match = re.match(r"((?:19|20)\d\d)(?:$|[_\-. ])", part)
        if match:
            return int(match.group(1))
    return None
