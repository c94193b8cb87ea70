"""Reading providers' files: encodings, CSV quirks, safe XML, and which files a path holds."""

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from linkage.sources.schema import SourceError

LEGACY_ENCODING = "cp1252"  # Windows-1252: what older LA systems and spreadsheets write
ENCODINGS = ("utf-8-sig", LEGACY_ENCODING)
MAX_FIELD_CHARS = 100_000  # a field longer than this is not an identifier: the file is refused
# two bytes that could begin a UTF-8 character: without any, a file that is not UTF-8 is
# wholly Windows-1252 and is decoded in one step rather than line by line
UTF8_START = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
QUOTE = '"'
# a byte that is not UTF-8, as decoding with surrogate escapes leaves it; a UTF-8 character
# beyond ASCII
NOT_UTF8 = re.compile("[\udc80-\udcff]")
BEYOND_ASCII = re.compile("[\x80-\ud7ff\ue000-\U0010ffff]")
# the encoding an XML declaration names (<?xml version="1.0" encoding="ISO-8859-1"?>)
XML_DECLARED_ENCODING = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*<\?xml[^>]*?\sencoding\s*=\s*[\"']([A-Za-z][\w.:-]*)[\"']")


def _file_bytes(path: Path) -> bytes:
    """The file's bytes; an unreadable, empty or binary file is refused."""
    try:
        data = path.read_bytes()
    except OSError as problem:
        raise SourceError(path, f"cannot be read ({problem.strerror or type(problem).__name__})") \
            from None
    if not data.strip():
        raise SourceError(path, "is empty")
    if b"\x00" in data[:4096]:
        raise SourceError(path, "is not a text file (it holds binary data)")
    return data


def read_text(path: Path) -> str:
    """The file's text: UTF-8 (with or without BOM), else Windows-1252."""
    return _whole_text(path, _file_bytes(path))


def _whole_text(path: Path, data: bytes) -> str:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise SourceError(path, "is neither UTF-8 nor Windows-1252 text")


def decoded_lines(path: Path) -> tuple[list[str], np.ndarray]:
    """The file's lines (with their line ends), and which were decoded as Windows-1252 in a
    file whose other lines are UTF-8.

    A file that is UTF-8 throughout, or Windows-1252 throughout, is decoded as such and no
    line is marked. A file mixing the two (rows pasted from two systems) is decoded line by
    line, each in its own encoding, so that no name is altered; the Windows-1252 lines are
    marked, for the rows they hold to be flagged.
    """
    data = _file_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        if not UTF8_START.search(data):
            text = _whole_text(path, data)
        else:
            return _lines_in_their_encodings(path, data.removeprefix(codecs.BOM_UTF8))
    lines = io.StringIO(text, newline="").readlines()
    return lines, np.zeros(len(lines), dtype=bool)


def _lines_in_their_encodings(path: Path, data: bytes) -> tuple[list[str], np.ndarray]:
    """Lines of a file that is not UTF-8 throughout, each decoded as UTF-8 if it is valid
    UTF-8, else as Windows-1252; and which were Windows-1252 (none, when no line holds a UTF-8
    character beyond ASCII: then the file is Windows-1252 throughout).

    One decoding pass keeps the bytes that are not UTF-8 as stand-ins (surrogate escapes); only
    the lines holding one are decoded again, so a big file is not decoded line by line.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    lines = io.StringIO(text, newline="").readlines()
    ends = np.cumsum(np.fromiter(map(len, lines), dtype=np.int64, count=len(lines)))
    stand_ins = np.fromiter((m.start() for m in NOT_UTF8.finditer(text)), dtype=np.int64)
    legacy = np.zeros(len(lines), dtype=bool)
    legacy[np.searchsorted(ends, stand_ins, side="right")] = True
    for index in np.flatnonzero(legacy):
        try:
            lines[index] = lines[index].encode("utf-8", "surrogateescape").decode(
                LEGACY_ENCODING)
        except UnicodeDecodeError:
            raise SourceError(path, "is neither UTF-8 nor Windows-1252 text "
                              f"(line {index + 1})") from None
    utf8_lines = (np.searchsorted(ends, m.start(), side="right")
                  for m in BEYOND_ASCII.finditer(text))
    if not any(not legacy[line] for line in utf8_lines):
        legacy[:] = False  # Windows-1252 throughout: nothing mixed
    return lines, legacy


def read_csv_table(path: Path, lower_columns: bool = False) -> pd.DataFrame:
    """A CSV file as stripped text columns, plus ``line`` (the record's first line; the header
    is line 1) and a column per reading problem (``READING_PROBLEMS``): ``malformed`` (more or
    fewer fields than the header; kept, padded or cut), ``encoding_mixed`` (a Windows-1252 row
    in a UTF-8 file) and ``quote_unbalanced`` (a quote that never closed: the row was read
    again by itself, split at every comma).

    Blank lines are skipped; empty columns after the last named one are dropped.
    """
    lines, legacy = decoded_lines(path)
    records = _csv_records(path, lines)
    malformed = _to_width(records.rows, len(records.header))
    frame = _stripped_frame(path, records.header, records.rows)
    if lower_columns:
        frame.columns = [c.lower() for c in frame.columns]
    first = np.array(records.firsts, dtype=np.int64)
    last = np.array(records.lasts, dtype=np.int64)
    legacy_before = np.concatenate([[0], np.cumsum(legacy)])  # legacy lines up to each line
    frame["line"] = first
    frame["malformed"] = malformed
    frame["encoding_mixed"] = (legacy_before[last] - legacy_before[first - 1]) > 0
    frame["quote_unbalanced"] = np.isin(np.arange(len(frame)), records.unbalanced)
    return frame


# the columns read_csv_table adds to a file's own, by the flag each raises
READING_PROBLEMS = {"malformed": "row_malformed", "encoding_mixed": "encoding_mixed",
                    "quote_unbalanced": "quote_unbalanced"}
READING_COLUMNS = ("line", *READING_PROBLEMS)


def reading_flags(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The flag masks of a ``read_csv_table`` frame's reading problems (False for rows read
    another way, such as Parquet or XML, which lack the columns or hold no value in them)."""
    return {flag: (frame[column].eq(True).to_numpy() if column in frame
                   else np.zeros(len(frame), dtype=bool))
            for column, flag in READING_PROBLEMS.items()}


def _wrong_width(fields: list[str], width: int) -> bool:
    return len(fields) < width or any(value.strip() for value in fields[width:])


def _to_width(rows: list[list[str]], width: int) -> np.ndarray:
    """Pad or cut each row to ``width`` fields, in place; which rows were malformed (fewer
    fields, or more that are not blank). Only rows of another width are touched."""
    lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
    malformed = lengths < width
    for index in np.flatnonzero(lengths != width):
        fields = rows[index]
        malformed[index] = _wrong_width(fields, width)
        rows[index] = fields[:width] + [""] * (width - len(fields))
    return malformed


@dataclass
class _Records:
    """The records of a CSV file as read: fields, first and last line; which hold a stray
    quote (their indexes)."""

    header: list[str] | None = None
    rows: list[list[str]] = field(default_factory=list)
    firsts: list[int] = field(default_factory=list)
    lasts: list[int] = field(default_factory=list)
    unbalanced: list[int] = field(default_factory=list)

    def add(self, fields: list[str], first: int, last: int, unbalanced: bool = False) -> None:
        if unbalanced:
            self.unbalanced.append(len(self.rows))
        self.rows.append(fields)
        self.firsts.append(first)
        self.lasts.append(last)


def _csv_records(path: Path, lines: list[str]) -> _Records:
    """The header and each record of the CSV ``lines``.

    A quote that opens a field and never closes where it should swallows the lines after it
    into one record. So the lines are read strictly (a closing quote must end its field), and
    a record over several lines that breaks that rule, or comes out the wrong width, and whose
    first line holds an odd number of quotes, is taken for a stray quote: that line is read
    again by itself (``_reread_line``) and reading starts afresh on the next line. The stray
    quote then costs one flagged row, not the rows after it.
    """
    records = _Records()
    start = 0
    while start < len(lines):
        stopped_at = _read_until_quote_problem(path, lines, start, records)
        if stopped_at is None:
            break
        _reread_line(path, lines, stopped_at, records)
        start = stopped_at  # the index of the line after it
    if records.header is None:
        raise SourceError(path, "has no header row")
    return records


def _read_until_quote_problem(path: Path, lines: list[str], start: int,
                              records: _Records) -> int | None:
    """Read records from line index ``start`` into ``records``; the number of the line where
    a record with a quote problem begins, or None at the end of the file."""
    reader = csv.reader(map(lines.__getitem__, range(start, len(lines))), strict=True)
    last = start  # the last line read so far
    rows, firsts, lasts = records.rows, records.firsts, records.lasts  # the hot loop's lists
    try:
        for fields in reader:
            first, last = last + 1, start + reader.line_num
            if last > first and _odd_quotes(lines[first - 1]) and (
                    records.header is None or _wrong_width(fields, len(records.header))
                    or _swallows_rows(lines, first, last, len(records.header))):
                return first
            if records.header is None or not "".join(fields).strip():
                _take(path, records, fields, first, last)  # the header, or a blank line
                continue
            rows.append(fields)
            firsts.append(first)
            lasts.append(last)
    except csv.Error:
        return last + 1
    return None


def _swallows_rows(lines: list[str], first: int, last: int, width: int) -> bool:
    """Whether a record read from lines ``first`` to ``last`` took in whole rows: a line after
    its first with a full row's commas. Two stray quotes can pair up into a record of the right
    width, the rows between them its one field; a field that truly holds a line break (an
    address) does not hold a row's worth of commas."""
    return any(lines[index].count(",") >= width - 1 for index in range(first, last))


def _reread_line(path: Path, lines: list[str], number: int, records: _Records) -> None:
    """Line ``number`` read by itself: split at every comma, and flagged, if a quote in it
    never closes; else read leniently (a quote closed in mid-field, as in ``"b"c``, as ever)."""
    line = lines[number - 1]
    if _odd_quotes(line):
        if records.header is None:
            raise SourceError(path, f"has an unbalanced quote in its header row (line "
                              f"{number}): correct the column names")
        records.add(next(csv.reader([line], quoting=csv.QUOTE_NONE), []), number, number,
                    unbalanced=True)
        return
    try:
        fields = next(csv.reader([line]), [])
    except csv.Error as problem:
        raise SourceError(path, f"is not a readable CSV file (line {number}: {problem})") \
            from None
    _take(path, records, fields, number, number)


def _take(path: Path, records: _Records, fields: list[str], first: int, last: int) -> None:
    """Keep a record read from lines ``first`` to ``last``: the first one not blank is the
    header."""
    if not any(text.strip() for text in fields):
        return
    if records.header is None:
        records.header = _header_names(path, fields)
    else:
        records.add(fields, first, last)


def _odd_quotes(line: str) -> bool:
    return line.count(QUOTE) % 2 == 1


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
    """The local name of an XML file's root element, read from its first few kilobytes (''
    if none)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(4096).decode("utf-8", errors="ignore")
    except OSError:
        return ""
    match = re.search(r"<([A-Za-z_][\w.\-:]*)[\s>/]", re.sub(r"<[?!][^>]*>", "", start))
    return match.group(1).rpartition(":")[2] if match else ""  # without a namespace prefix


def parse_xml(path: Path):
    """The XML root element, parsed safely (no entity expansion, no external entities).

    The bytes are decoded once: in the encoding the XML declaration names, else as UTF-8, else
    (no declaration, not UTF-8) as Windows-1252. Bytes that are not text in the encoding
    declared are refused, naming the line, rather than guessed at.
    """
    data = _file_bytes(path)
    declared = XML_DECLARED_ENCODING.match(data)
    encoding = declared.group(1).decode("ascii") if declared else "UTF-8"
    if declared:
        _check_declared_encoding(path, data, encoding)
    else:
        data = _whole_text(path, data).encode("utf-8")  # no declaration: the parser reads UTF-8
    try:
        return SafeET.fromstring(data, forbid_dtd=True)
    except DefusedXmlException:
        raise SourceError(path, "uses XML entities or DTDs, which are refused for safety") \
            from None
    except SafeET.ParseError as problem:
        raise SourceError(path, f"is not well-formed XML ({problem})") from None
    except (ValueError, LookupError):  # an encoding Python knows but the XML parser cannot use
        raise SourceError(path, f"declares the encoding {encoding}, which cannot be read: "
                          "save it as UTF-8") from None


def _check_declared_encoding(path: Path, data: bytes, encoding: str) -> None:
    """Refuse a file whose bytes are not text in the encoding its declaration names."""
    try:
        data.decode(encoding)
    except LookupError:
        raise SourceError(path, f"declares the encoding {encoding}, which is not one known: "
                          "save it as UTF-8") from None
    except UnicodeDecodeError as problem:
        line = data.count(b"\n", 0, problem.start) + 1
        raise SourceError(path, f"declares the encoding {encoding}, but line {line} is not "
                          f"{encoding} text: save the file in the encoding it declares, or "
                          "correct the declaration") from None


def plain_names(root):
    """``root`` with every element named by its local name in lower case: the XML namespace
    (``<Child xmlns=...>``, ``<cin:Child>``) and the letter case (``<CHILD>``) dropped, so a
    reader finds the elements of every supplier's layout by one name."""
    for element in root.iter():
        if isinstance(element.tag, str):
            element.tag = element.tag.rpartition("}")[2].lower()
    return root


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
