"""The `linkage synth` command, added to the linkage CLI as a plugin (entry point
``linkage.commands``), so that the linkage library never imports the generator."""

import json
import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from linkage.config import ConfigError
from linkage.console import err, fail
from linkage.paths import new_folder


def synth(
    people: int = typer.Option(20000, "--people", min=100, help="Children in the population."),
    seed: int = typer.Option(1, "--seed", help="Random seed: the same seed gives the same files."),
    out: Path = typer.Option(..., "--out", help="Folder to write the world into."),
    config: Path | None = typer.Option(
        None, "--config", help="Rates of the world (default: configs/synthetic.yaml)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress messages."),
) -> None:
    """Write a synthetic England: every source in its real format, with the truth.

    Providers' files go under OUT/providers/ (SSDA903 CSV tables and CIN census XML per LA,
    school census CSV from DfE, ASG child and adopter CSV per adoption agency); the true
    person behind every record goes under OUT/truth/ (Parquet); counts go to OUT/world.json.
    """
    from synthetic.world import build_world, load_config, write_world

    if config is not None and not config.is_file():
        fail(f"{config}: no such config file")
    new_folder(out, "a synthetic world")  # like demo: an existing world is never overwritten
    try:
        settings = load_config(config)
    except ConfigError as problem:
        fail(str(problem))
    except (OSError, ValueError) as problem:
        fail(f"{config}: cannot read the config ({type(problem).__name__})")
    started = time.perf_counter()

    def progress(stage: str) -> None:
        if not quiet:
            err.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {stage}")

    world = build_world(people, seed, settings, progress)
    summary = write_world(world, out, progress)
    if as_json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    elif not quiet:
        _print_summary(summary, out, time.perf_counter() - started)


def _print_summary(summary: dict, out: Path, seconds: float) -> None:
    console = Console()
    table = Table(title=f"Synthetic England written to {out} in {seconds:.1f}s")
    table.add_column("what")
    table.add_column("count", justify="right")
    persons = summary["persons"]
    services = summary["services"]
    rows = [
        ("children", persons["children"]),
        ("adopters", persons["adopters"]),
        ("twin or multiple births", persons["twin_or_multiple_births"]),
        ("children who moved LA", persons["moved_la"]),
        ("local authorities", len(summary["local_authorities"])),
        ("adoption agencies", len(summary["adoption_agencies"])),
        ("children in need", services["children_in_need"]),
        ("looked-after children", services["looked_after"]),
        ("adopted", services["adopted"]),
        ("sibling groups on the adoption pathway", services["sibling_groups_on_adoption_pathway"]),
        ("unaccompanied asylum-seeking children", persons["unaccompanied_asylum_seeking_children"]),
        ("re-entries to care", services["re_entries_to_care"]),
        ("child protection plans", services["child_protection_plans"]),
    ]
    rows += [(f"{source} records", n) for source, n in summary["records"].items()]
    for what, count in rows:
        table.add_row(what, f"{count:,}")
    console.print(table)
