"""One `linkage review`: the spine's pairs near the threshold, and persons whose records
disagree, written as an offline page on which a reviewer decides them."""

import os
import tempfile
from pathlib import Path

from linkage.atomic import write_atomically
from linkage.review.page import render_page
from linkage.review.pairs import NEAR, review_pairs, review_settings
from linkage.spine.store import connect


def review(spine: Path, out: Path, within: float | None = None,
           limit: int | None = None) -> dict:
    """Write the review page of the spine's latest version to ``out``; returns its summary.

    Reads the spine only (read-only, no key): ``within`` bits around the threshold and at
    most ``limit`` pairs of each kind, by default configs/review.yaml's."""
    settings = review_settings()
    within = settings["within_bits"] if within is None else within
    limit = settings["limit"] if limit is None else limit
    con = connect(spine, read_only=True)
    try:
        # its joins run over every scored pair: capped, DuckDB spills rather than taking
        # most of the machine's memory (its default) on a national spine
        con.execute(f"SET memory_limit = '{settings['memory_limit']}'")
        con.execute(f"SET temp_directory = '{tempfile.gettempdir()}/linkage-review-"
                    f"{os.getpid()}'")
        pairs = review_pairs(con, str(spine), within, limit)
    finally:
        con.close()
    write_atomically(out, render_page(pairs))
    near = sum(1 for p in pairs.pairs if p["kind"] == NEAR)
    return {"spine": str(spine), "out": str(out), "version": pairs.version,
            "threshold_match_weight": pairs.threshold_weight, "within_bits": within,
            "limit": limit, "found": pairs.found, "shown": {
                "near_threshold": near, "persons_disagreeing": len(pairs.pairs) - near},
            "pairs_sha256": pairs.pairs_sha256}
