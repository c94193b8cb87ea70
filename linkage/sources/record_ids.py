"""Record ids made unique within a provider's return, deterministically.

A return can list one id twice (a child entered twice in a CIN return), leave ids blank (two
ASG children without an id), or be split across files whose ids repeat (two ASG files listing
one child). Each record must still be one record to the linkage
unit, so every record keeps its id if that is unique, and otherwise gets a suffix:
``id~2``, ``id~3`` in file and row order; a blank id becomes ``~<file>:<row>``. Such records
are flagged, never dropped, so ``check`` and ``hash`` report them and ``link`` never fails on
them. (A duplicated id's content rows stay with the first record of that id: the content
cannot say which of the two it belongs to.)
"""

import numpy as np
import pandas as pd

from linkage.sources.schema import SourceData

DUPLICATE = "record_id_duplicate"


def unique_record_ids(data: SourceData) -> SourceData:
    """``data`` with every (provider, period, record id) unique, repeats flagged."""
    records = data.records
    if records.empty:
        return data
    ids = records.record_id.fillna("").astype(str)
    blank = (ids.str.strip() == "").to_numpy()
    where = (pd.Series(pd.factorize(records["file"].astype(str))[0], index=records.index)
             .astype(str) + ":" + records["row"].astype(str))
    ids = ids.where(~blank, "~" + where)
    key = records.provider.astype(str) + "|" + records.period.astype(str) + "|" + ids
    repeat = key.groupby(key, sort=False).cumcount().to_numpy()
    shared = key.duplicated(keep=False).to_numpy()
    renamed = ids.where(repeat == 0, ids + "~" + (repeat + 1).astype(str))
    if not shared.any() and not blank.any():
        return data
    flags = records["flags"].to_numpy(dtype=object).copy()
    flags[shared] = np.where(flags[shared] == "", DUPLICATE, flags[shared] + ";" + DUPLICATE)
    data.records = records.assign(record_id=renamed.to_numpy(), flags=flags)
    return data
