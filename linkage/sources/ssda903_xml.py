"""903 XML (``EXPSSDA903``) read into the same tables as a return's CSV files.

Two layouts are read, told apart by their structure rather than by a setting:

- the DfE's, which case-management systems export: each ``CHILD`` holds a ``HEADER`` (the child
  id as ``CHILDID``) with reviews, missing episodes, permanence, OC2 and placed-for-adoption rows
  nested inside it and the AD1 and UASC fields given directly in it, then one ``EPISODE`` per
  episode (placement as ``PL``);
- one element per CSV table row beside ``HEADER`` (``EPISODE``, ``AD1``, ``REVIEW``, ...), each
  holding one element per column.

An element with elements inside it is a row of the table its name gives (configs/sources.yaml,
``ssda903.tables.*.xml``); an element holding only text is a column. A row takes the columns it
does not give itself (the child's id, DOB) from the child's HEADER.
"""

from collections import defaultdict
from pathlib import Path

import pandas as pd

from linkage.sources.files import parse_xml, plain_names, xml_root_name
from linkage.sources.schema import SourceError
from linkage.sources.values import source_codes

ROOT = "EXPSSDA903"
Row = dict[str, str]


def tables_from_xml(path: Path, refuse_other_xml: bool) -> dict[str, pd.DataFrame] | None:
    """The 903 tables of one XML return, as text columns plus ``line`` (the child's number).

    Returns None for another collection's XML found in a folder (not ours to read); raises
    :class:`SourceError` for such a file given by name, or for a return with no children.
    """
    if not refuse_other_xml and xml_root_name(path).upper() != ROOT:
        return None
    root = plain_names(parse_xml(path))  # one spelling: no namespace, lower case
    if root.tag.upper() != ROOT:
        raise SourceError(path, f"is not 903 XML (its root element is <{root.tag}>)")
    children = [element for element in root if element.tag == "child"]
    if not children:
        raise SourceError(path, f"is 903 XML with no <CHILD> elements in <{root.tag}>: "
                          "there is nothing to read")
    layout = Layout(source_codes()["ssda903"])
    rows: dict[str, list[Row]] = defaultdict(list)
    for number, child in enumerate(children, start=1):
        found = layout.child_rows(child)
        if not found or found[0][0] != "header":
            # its other rows would belong to no child: refused rather than dropped
            raise SourceError(path, f"row {number}: <CHILD> number {number} has no <HEADER>")
        for table, values in found:
            columns = layout.columns[table]
            rows[table].append({**{c: values.get(c, "") for c in columns}, "line": number})
    return {name: pd.DataFrame(table_rows, columns=[*layout.columns[name], "line"])
            .assign(file=str(path), malformed=False) for name, table_rows in rows.items()}


class Layout:
    """The element names of the 903 tables (configs/sources.yaml ``ssda903``)."""

    def __init__(self, config: dict):
        tables = config["tables"]
        self.columns = {name: table["columns"] for name, table in tables.items()}
        self.table_of = {element: name for name, table in tables.items()
                         for element in table["xml"]}
        self.inline = {name: table["inline"] for name, table in tables.items()
                       if table.get("inline")}
        self.aliases = config["column_aliases"]
        self._names: dict[str, str] = {}  # element tag -> CSV name: a file repeats few tags

    def child_rows(self, child) -> list[tuple[str, Row]]:
        """The table rows of one ``CHILD`` element: its header, inline tables, nested rows."""
        header = next((e for e in child if self._table(e) == "header"), None)
        given = self._leaves(header) if header is not None else {}
        rows = [("header", given)] if header is not None else []
        # the DfE layout gives AD1 and UASC fields in HEADER itself: there when their marker is
        rows += [(name, given) for name, marker in self.inline.items() if given.get(marker)]
        for element in [*child, *(header if header is not None else [])]:
            table = self._table(element)
            if element is header or table is None or len(element) == 0:
                continue  # the header itself, another table (OC2, OC3), or a column
            own = {name: value for name, value in self._leaves(element).items() if value}
            rows.append((table, {**given, **own}))
        return rows

    def _table(self, element) -> str | None:
        return self.table_of.get(self._name(element.tag))

    def _leaves(self, element) -> Row:
        """The text of an element's text-only children, by CSV column name."""
        return {self._name(part.tag): (part.text or "").strip()
                for part in element if len(part) == 0}

    def _name(self, tag) -> str:
        """An element's name as the CSV tables spell it: upper case, aliased."""
        name = self._names.get(tag)
        if name is None:
            name = tag.upper() if isinstance(tag, str) else ""
            name = self._names[tag] = self.aliases.get(name, name)
        return name

