"""`linkage hash-delivery`: hash every provider source of a delivery in one command, with one
progress bar and a summary table (the work itself is :mod:`linkage.pipelines.delivery`)."""

import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkage.console import err, fail

SUMMARY_COLUMNS = [("provider", "provider"), ("source", "source"), ("rows in", "rows_in"),
                   ("rows out", "rows_out"), ("rejected", "rejected"), ("flagged", "flagged"),
                   ("bundle", "bundle")]


def hash_delivery_command(
    delivery: Path = typer.Argument(..., help="A delivery plan (YAML), or a folder laid out as "
                                              "linkage synth writes providers/ "
                                              "(la_<code>/ssda903, la_<code>/cin, ...)."),
    out: Path = typer.Option(..., "--out", help="Folder for the bundles (made if new; a "
                                                "bundle already there is never overwritten)."),
    key: Path | None = typer.Option(None, "--key", help="Linkage key file (default: the "
                                                        "plan's key, else LINKAGE_KEY)."),
    sign_key: Path | None = typer.Option(None, "--sign-key",
                                         help="Signing key for providers the plan gives none "
                                              "(default: the plan's sign_key, else "
                                              "LINKAGE_SIGNING_KEY)."),
    to_unit: Path | None = typer.Option(None, "--to-unit",
                                        help="The linkage unit's public key (default: the "
                                             "plan's to_unit, else LINKAGE_UNIT_PUBLIC_KEY)."),
    to_custodian: Path | None = typer.Option(None, "--to-custodian",
                                             help="The data custodian's public key (default: "
                                                  "the plan's to_custodian, else "
                                                  "LINKAGE_CUSTODIAN_PUBLIC_KEY)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Entries hashed side by side."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Hash a whole delivery: every entry of a plan, or every provider source of a folder,
    into one signed bundle each.

    Every entry is tried, so one run lists every problem, each naming its entry and file.
    The bundles are moved into OUT only when every entry succeeded; otherwise nothing is
    written and the exit code is 1: fix the files and run the same command again.
    """
    from linkage.pipelines.delivery import (
        DeliveryError,
        KeyFiles,
        delivery_entries,
        delivery_keys,
        hash_delivery,
    )

    try:
        entries, plan_keys = delivery_entries(delivery)
        files = plan_keys.overridden_by(KeyFiles(key, sign_key, to_unit, to_custodian))
        keys = delivery_keys(entries, files)
        with _bar(quiet or as_json) as bar:
            task = bar.add_task("hashing the delivery", total=len(entries))

            def progress(outcome) -> None:
                bar.update(task, advance=1, description=f"hashed {outcome.entry.bundle}")

            outcomes = hash_delivery(entries, keys, out, workers, progress)
    except DeliveryError as problem:
        fail(str(problem))
    failed = [outcome for outcome in outcomes if not outcome.ok]
    rows = [outcome.row() for outcome in outcomes]
    if as_json:
        sys.stdout.write(json.dumps({"out": str(out), "written": not failed,
                                     "failed": len(failed), "entries": rows},
                                    sort_keys=True) + "\n")
    elif not quiet:
        _print_summary(rows, out, bool(failed))
    for outcome in failed:
        err.print(f"[bold red]error:[/] {escape(outcome.entry.describe())}: "
                  f"{escape(outcome.problem)}", highlight=False)
    if failed:
        err.print(f"{len(failed)} of {len(outcomes)} entries failed; no bundle was written to "
                  f"{out}. Fix them and run the same command again.")
        raise typer.Exit(1)


def _bar(disabled: bool) -> Progress:
    columns = [TextColumn("{task.description:<36}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    return Progress(*columns, console=err, disable=disabled, transient=False)


def _print_summary(rows: list[dict], out: Path, failed: bool) -> None:
    title = (f"Delivery not written ({out})" if failed
             else f"{len(rows)} bundles written to {out}")
    table = Table(title=title)
    for heading, name in SUMMARY_COLUMNS:
        counted = name in ("rows_in", "rows_out", "rejected", "flagged")
        # a narrow terminal folds names rather than cutting them short
        table.add_column(heading, justify="right" if counted else "left", overflow="fold")
    if failed:
        table.add_column("result")  # each problem is printed in full below the table
    for row in rows:
        cells = ["-" if row[name] is None else
                 f"{row[name]:,}" if isinstance(row[name], int) else str(row[name])
                 for _, name in SUMMARY_COLUMNS]
        if failed:
            cells.append("ok" if row["problem"] is None else "failed")
        table.add_row(*map(escape, cells))
    Console().print(table)
