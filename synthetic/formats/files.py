"""Plain CSV and Parquet writing shared by the format writers (deterministic bytes)."""

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

# Quote nothing, as LA systems' exports mostly do; a value that needs quotes makes Arrow refuse,
# and then pandas writes the file with minimal quoting instead.
CSV_OPTIONS = pacsv.WriteOptions(quoting_style="none", quoting_header="none")


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write every column as text; empty strings and missing values become empty cells."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {}
    for name in frame.columns:
        text = _text_array(frame[name])
        columns[name] = pc.if_else(pc.equal(text, ""), None, text)
    table = pa.table(columns)
    try:
        pacsv.write_csv(table, path, CSV_OPTIONS)
    except pa.ArrowInvalid:
        table.to_pandas().to_csv(path, index=False, lineterminator="\n")


def _text_array(column: pd.Series) -> pa.Array:
    """A column as Arrow text, fast when it already holds Python strings (and None or NaN)."""
    try:
        return pa.array(column.to_numpy(dtype=object), type=pa.string(), from_pandas=True)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array(column.astype("string"), type=pa.string(), from_pandas=True)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)
    pq.write_table(table, path, compression="zstd")
