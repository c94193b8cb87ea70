"""A quick privacy self-check of name filters: how frequency alignment would fare.

Usage: python bench/filter_frequency.py BUNDLES_DIR [--limit 0.01]

Frequency alignment matches the most common filter to the most common name. It recovers the
records whose filter is shared by many records; a filter held by fewer than ``limit`` of all
records stands among too many equally rare ones to be named by its frequency. For each name
filter column, prints the share of all records whose filter is held by more than ``limit``
of records, and the largest share any one filter holds.
"""

import argparse
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq


def filter_frequency(bundles: list[Path], limit: float) -> dict:
    """Per ``*_bloom`` column: records, share above ``limit``, largest filter share."""
    frames, records = {}, 0
    for path in bundles:
        table = pq.read_table(path / "tokens.parquet")
        records += table.num_rows
        for name in (n for n in table.column_names if n.endswith("_bloom")):
            frames.setdefault(name, []).append(table[name].to_pandas())
    out = {}
    for name, parts in sorted(frames.items()):
        counts = pd.concat(parts, ignore_index=True).dropna().value_counts()
        common = counts[counts > limit * records]
        out[name] = {"records": records, "with_filter": int(counts.sum()),
                     "share_above_limit": round(float(common.sum() / records), 6),
                     "largest_share": round(float(counts.iloc[0] / records), 6)
                     if len(counts) else 0.0}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundles", type=Path)
    parser.add_argument("--limit", type=float, default=0.01)
    args = parser.parse_args()
    bundles = sorted(p for p in args.bundles.iterdir() if (p / "tokens.parquet").is_file())
    print(json.dumps(filter_frequency(bundles, args.limit), indent=2))


if __name__ == "__main__":
    main()
