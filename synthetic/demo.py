"""`linkage demo`: the whole story on a fresh machine in a few minutes.

Synthesise an England, hash each provider's files as that provider would, link, derive family
keys, evaluate against the truth, write the quality report, and cut one sample extract. A
plugin command of the synthetic package, like `linkage synth`, because it synthesises.
"""

import json
import sys
import time
from pathlib import Path

import typer
import yaml
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from linkage.console import err
from linkage.paths import new_folder

SAMPLE_REQUEST = {
    "project": "DEMO01", "cohort": "cla_any_point", "period": None,
    "datasets": {"ssda903": ["LS", "PLACE", "REC", "DECOM", "DEC"],
                 "cin": ["PrimaryNeedCode", "CINreferralDate"],
                 "school_census": ["senprovision", "fsm"],
                 "asg_children": ["date_matched", "date_placed"]},
    "family_keys": True,
}


def demo(
    out: Path = typer.Option(..., "--out", help="Folder for everything the demo writes."),
    people: int = typer.Option(20000, "--people", min=1000, help="Children in the world."),
    seed: int = typer.Option(7, "--seed", help="Random seed of the world."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress, only the report's path."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Run the whole flow on a synthetic England and print where the report is.

    Writes OUT/world (providers' files and truth), OUT/bundles (one per provider source),
    OUT/spine.duckdb, OUT/evaluation.json, OUT/report.html and OUT/extracts/DEMO01.
    """
    new_folder(out, "the demo")
    started = time.perf_counter()
    columns = [TextColumn("{task.description:<28}"), BarColumn(), TextColumn(
        "{task.completed}/{task.total}"), TimeElapsedColumn()]
    with Progress(*columns, console=err, disable=quiet or as_json, transient=False) as bar:
        summary = _run(out, people, seed, bar)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    if as_json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    elif quiet:
        sys.stdout.write(f"{summary['paths']['report']}\n")
    else:
        _print_summary(summary)


def _run(out: Path, people: int, seed: int, bar: Progress) -> dict:
    from linkage.pipelines.delivery import folder_entries, hash_providers
    from linkage.pipelines.link import link
    from linkage.pseudonymise.bundle import open_bundles
    from linkage.pseudonymise.keys import load_key
    from linkage.pseudonymise.roles import Keyring
    from linkage.quality.report import write_report
    from linkage.release.content import record_groups
    from linkage.release.extract import extract
    from linkage.release.request import load_request
    from synthetic.world import build_world, load_config, write_world

    paths = {"world": out / "world", "bundles": out / "bundles", "spine": out / "spine.duckdb",
             "evaluation": out / "evaluation.json", "report": out / "report.html",
             "extract": out / "extracts" / "DEMO01", "keys": out / "keys"}
    task = bar.add_task("synthesising England", total=1)
    world = build_world(people, seed, load_config())
    facts = write_world(world, paths["world"])
    bar.advance(task)

    # every role's keys in one folder: a rehearsal, not a deployment
    keys = Keyring.create(paths["keys"])
    jobs = folder_entries(paths["world"] / "providers")
    task = bar.add_task("hashing, as each provider", total=len(jobs))
    hash_providers(paths["world"] / "providers", paths["bundles"], keys.for_provider(),
                   progress=lambda _: bar.advance(task))

    stages = ["opening bundles", "linking", "updating the spine", "deriving family keys"]
    task = bar.add_task("linking and family keys", total=len(stages))
    bundles = sorted(paths["bundles"].iterdir())
    linked = link(paths["spine"], bundles, keys.for_unit(), seed=seed,
                  progress=lambda _: bar.advance(task))
    bar.update(task, completed=len(stages))

    task = bar.add_task("evaluating and reporting", total=1)
    # the data custodian's report: breakdowns by group from the content parts
    groups = record_groups(open_bundles(bundles, keys.for_custodian()))
    data = write_report(paths["spine"], paths["report"], paths["world"] / "truth", groups,
                        load_key(keys.linkage_key))
    accuracy = data["accuracy"]
    paths["evaluation"].write_text(json.dumps(accuracy, indent=2, sort_keys=True) + "\n")
    bar.advance(task)

    task = bar.add_task("cutting a sample extract", total=1)
    period = max(facts["collection_years"]) if "collection_years" in facts else None
    request = out / "request.yaml"
    request.write_text(yaml.safe_dump({**SAMPLE_REQUEST, "period": period or 2024},
                                      sort_keys=False))
    released = extract(paths["spine"], load_request(request), paths["extract"], bundles,
                       keys.for_custodian())
    bar.advance(task)
    return {
        "people": people, "seed": seed, "records": linked["records"],
        "persons": linked["persons"],
        "pairwise": accuracy["pairwise"], "persons_split": accuracy["persons_split"],
        "persons_merged": accuracy["persons_merged"], "twins_merged": accuracy["twins_merged"],
        "child_adopter": accuracy["child_adopter"], "siblings": accuracy["siblings"],
        "mother_child": accuracy["mother_child"], "extract_files": len(released["files"]),
        "paths": {name: str(path) for name, path in paths.items()},
    }


def _print_summary(summary: dict) -> None:
    console = Console()
    table = Table(title=f"linkage demo: {summary['people']:,} children, seed {summary['seed']}, "
                        f"{summary['seconds']:.0f}s")
    table.add_column("measure")
    table.add_column("value", justify="right")
    pairwise = summary["pairwise"]
    rows = [
        ("records linked", f"{summary['records']:,} into {summary['persons']:,} persons"),
        ("pairwise precision / recall / F1",
         f"{pairwise['precision']:.4f} / {pairwise['recall']:.4f} / {pairwise['f1']:.4f}"),
        ("persons split / merged / twin pairs merged",
         f"{summary['persons_split']} / {summary['persons_merged']} / "
         f"{summary['twins_merged']}"),
        ("child-adopter precision / recall",
         f"{summary['child_adopter']['precision']:.3f} / "
         f"{summary['child_adopter']['recall']:.3f}"),
        ("sibling pairs precision / recall",
         f"{summary['siblings']['pair_precision']:.3f} / "
         f"{summary['siblings']['pair_recall']:.3f}"),
        ("mother-child precision / recall",
         f"{summary['mother_child']['precision']:.3f} / "
         f"{summary['mother_child']['recall']:.3f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    for name, path in summary["paths"].items():
        if name != "key":
            table.add_row(f"[dim]{name}[/]", f"[dim]{path}[/]")
    console.print(table)
    console.print(f"Open the report: {summary['paths']['report']}")
