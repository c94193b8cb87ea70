"""The ``linkage`` command line: one thin command per verb of the flow."""

import json
import os
import shutil
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from linkage import __version__
from linkage.console import err, fail
from linkage.sources.schema import SOURCE_KINDS, SourceError

app = typer.Typer(
    help="Privacy-preserving record linkage for children's social care data in England.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback(invoke_without_command=True)
def main(version: bool = typer.Option(False, "--version", help="Print the version and exit.")):
    if version:
        print(__version__)
        raise typer.Exit(0)


@app.command()
def check(
    paths: list[Path] = typer.Argument(..., help="The provider's files or folders (any number)."),
    source: str = typer.Option(..., "--source", help="Source kind: " + ", ".join(SOURCE_KINDS)),
    mapping: Path | None = typer.Option(None, "--mapping",
                                        help="Column mapping (YAML) for --source generic."),
    provider: str | None = typer.Option(None, "--provider",
                                        help="Provider code (LA or agency) if the files lack it."),
    period: int | None = typer.Option(None, "--period", min=1990, max=2100,
                                      help="Collection year (ending 31 March) if the file "
                                           "names do not say it."),
    report: Path | None = typer.Option(None, "--report",
                                       help="Also write the report: JSON if FILE ends .json, "
                                            "else Markdown."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON on stdout."),
) -> None:
    """Read and validate a provider's files: a data-quality report, no identifiers printed.

    Every record read is kept (records in = records out); problems are flagged per record and
    counted by kind, with the file and row of the first few. A file that cannot be used at all
    (missing required column, wrong kind, unreadable) stops the check with exit code 1.
    """
    from linkage.sources import read_source
    from linkage.sources.check_report import check_report, render_markdown

    if source not in SOURCE_KINDS:
        fail(f"--source {source}: not a source kind ({', '.join(SOURCE_KINDS)})")
    try:
        with err.status(f"reading {source} files"):
            data = read_source(source, paths, mapping, provider, period)
    except SourceError as problem:
        fail(str(problem))
    summary = check_report(data)
    if report is not None:
        text = (json.dumps(summary, indent=2) + "\n" if report.suffix.lower() == ".json"
                else render_markdown(summary))
        write_text_atomically(report, text)
    if as_json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    else:
        _print_check(summary)


@app.command()
def keygen(
    out: Path = typer.Option(..., "--out", help="Where to write the new key (never overwritten)."),
    keypair: bool = typer.Option(False, "--keypair",
                                 help="Make the linkage unit's key pair for encrypted bundles "
                                      "instead: private key at OUT, public key at OUT.pub."),
) -> None:
    """Make a new random linkage key (256 bits, file mode 0600), or a key pair with --keypair.

    The linkage key is shared with data providers only, never with the linkage unit. The key
    pair's public half goes to providers; its private half stays with the linkage unit.
    """
    from linkage.pseudonymise.keys import KeyError_, generate_key_file, generate_keypair

    try:
        if keypair:
            public = out.with_name(out.name + ".pub")
            generate_keypair(out, public)
            err.print(f"private key written to {out} (mode 600); public key to {public}")
        else:
            generate_key_file(out)
            err.print(f"linkage key written to {out} (mode 600). Share it with providers "
                      "only, by a secure route.")
    except KeyError_ as problem:
        fail(str(problem))


@app.command(name="hash")
def hash_command(
    paths: list[Path] = typer.Argument(..., help="One provider's files or folders of one kind."),
    source: str = typer.Option(..., "--source", help="Source kind: " + ", ".join(SOURCE_KINDS)),
    provider: str = typer.Option(..., "--provider", help="Your provider code (LA or agency)."),
    out: Path = typer.Option(..., "--out", help="The bundle to write (a folder, or a file "
                                                "with --encrypt-to)."),
    key: Path | None = typer.Option(None, "--key", help="Linkage key file (default: the "
                                                        "LINKAGE_KEY environment variable)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Mapping for --source generic."),
    period: int | None = typer.Option(None, "--period", min=1990, max=2100,
                                      help="Collection year if the file names do not say it."),
    encrypt_to: Path | None = typer.Option(None, "--encrypt-to",
                                           help="Encrypt the bundle to the linkage unit's "
                                                "public key."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes for hashing."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON on stdout."),
) -> None:
    """Read, validate and pseudonymise a provider's files into one bundle.

    The bundle holds tokens.parquet (keyed tokens for the linkage unit), content.parquet (the
    payload for the TRE) and manifest.json. No plaintext identifier is written: a leak guard
    checks the tokens and manifest and refuses to write if one appears.
    """
    from linkage.pseudonymise.bundle import BundleError, write_bundle
    from linkage.pseudonymise.encryption import (
        EncryptionError,
        encrypt_bundle,
        load_public_key,
    )
    from linkage.pseudonymise.keys import KeyError_, load_key
    from linkage.sources import read_source

    if source not in SOURCE_KINDS:
        fail(f"--source {source}: not a source kind ({', '.join(SOURCE_KINDS)})")
    if out.exists():
        fail(f"{out}: exists already; a bundle is never overwritten")
    try:
        linkage_key = load_key(key)
        public_key = load_public_key(encrypt_to) if encrypt_to else None
        with _status(f"reading {source} files", quiet):
            data = read_source(source, paths, mapping, provider, period)
        with _status(f"hashing {len(data.records):,} records", quiet):
            target = out.with_name(f".{out.name}.folder") if public_key else out
            written = write_bundle(data, linkage_key, target, workers=workers)
        if public_key is not None:
            try:
                encrypt_bundle(target, public_key, out)
            finally:
                shutil.rmtree(target, ignore_errors=True)  # no plaintext content left behind
    except (KeyError_, SourceError, BundleError, EncryptionError) as problem:
        fail(str(problem))
    manifest = written.manifest
    if as_json:
        sys.stdout.write(json.dumps(manifest, sort_keys=True) + "\n")
    elif not quiet:
        rows = manifest["rows"]
        err.print(f"bundle written to {out}{' (encrypted)' if encrypt_to else ''}: "
                  f"{rows['in']:,} records in, {rows['out']:,} out, {rows['flagged']:,} "
                  f"flagged, {rows['rejected']:,} rejected; key fingerprint "
                  f"{manifest['key_fingerprint']}")


@app.command(name="link")
def link_command(
    bundles: list[Path] = typer.Argument(..., help="Bundles to link (folders or encrypted "
                                                   "files), any number."),
    spine: Path = typer.Option(..., "--spine", help="The spine (a DuckDB file; made if new)."),
    decrypt_key: Path | None = typer.Option(None, "--decrypt-key",
                                            help="The linkage unit's private key, for "
                                                 "encrypted bundles."),
    model: Path | None = typer.Option(None, "--model", help="Reuse a trained model (JSON) "
                                                            "instead of training."),
    seed: int | None = typer.Option(None, "--seed", help="Seed person keys (for "
                                                         "reproducible test runs)."),
    wait: float = typer.Option(0, "--wait", min=0, help="If another run is updating the "
                                                        "spine, wait up to this many seconds."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    backend: str = typer.Option("duckdb", "--backend", help="duckdb (one machine) or spark "
                                                            "(pip install 'linkage[spark]')."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Link all bundles into the spine: a new version with stable person keys.

    Bundles hashed with different keys are refused. The model is trained (u by random
    sampling, m by EM) unless --model is given, and saved beside the spine as
    SPINE.model.json. Existing persons keep their keys when their records are the same.
    """
    from linkage.match.spark import SparkMissing, SparkModelError
    from linkage.pseudonymise.bundle import BundleError
    from linkage.pseudonymise.encryption import EncryptionError, load_private_key
    from linkage.pseudonymise.keys import KeyError_
    from linkage.spine.lock import SpineBusy
    from linkage.spine.store import SpineError
    from linkage.spine.update import link

    if backend not in ("duckdb", "spark"):
        fail(f"--backend {backend}: not a backend (duckdb, spark)")

    started = time.perf_counter()

    def progress(stage: str) -> None:
        if not quiet:
            err.print(f"[dim]{time.perf_counter() - started:6.1f}s[/] {stage}")

    if model is not None:
        try:
            json.loads(model.read_text(encoding="utf-8"))["comparisons"]
        except (OSError, ValueError, KeyError, TypeError):
            fail(f"{model}: is not a trained linkage model (a SPINE.model.json file)")
    try:
        private_key = load_private_key(decrypt_key) if decrypt_key else None
        summary = link(spine, bundles, private_key, model, seed, progress, wait, backend)
    except (BundleError, EncryptionError, KeyError_, SpineBusy, SpineError,
            SparkMissing, SparkModelError) as problem:
        fail(str(problem))
    if as_json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    elif not quiet:
        err.print(f"spine {spine} version {summary['version']}: {summary['records']:,} "
                  f"records, {summary['persons']:,} persons "
                  f"({summary['records_unlinked']:,} records unlinked)")


@app.command()
def evaluate(
    spine: Path = typer.Option(..., "--spine", help="The spine to evaluate."),
    truth: Path = typer.Option(..., "--truth", help="A synthetic world's truth/ folder."),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON."),
) -> None:
    """Precision, recall and F1 of the spine's latest version against truth.

    Pairwise and B-cubed scores, persons split and merged, twin pairs merged, recall by
    source pair and by group (ethnicity, sex, age band, moved LA), and the family keys'
    precision and recall (child-adopter, sibling pairs, mother-child).
    """
    from linkage.quality.evaluate import EvaluationError, load_truth
    from linkage.quality.evaluate import evaluate as score
    from linkage.quality.families import evaluate_families
    from linkage.spine.store import SpineError, connect, current_records, family_tables

    if not spine.is_file():
        fail(f"{spine}: no such spine")
    try:
        con = connect(spine)
        linked = current_records(con)
        families = family_tables(con)
        con.close()
        records, persons = load_truth(truth)
        result = score(linked, records, persons)
        result.update(evaluate_families(families, linked, records, persons, truth))
    except (EvaluationError, SpineError) as problem:
        fail(str(problem))
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
        return
    pairwise = result["pairwise"]
    console = Console()
    console.print(f"pairwise precision {pairwise['precision']:.4f}, recall "
                  f"{pairwise['recall']:.4f}, F1 {pairwise['f1']:.4f}; B-cubed precision "
                  f"{result['b_cubed']['precision']:.4f}, recall {result['b_cubed']['recall']:.4f}")
    console.print(f"{result['persons']:,} persons in truth, {result['clusters']:,} in the "
                  f"spine; {result['persons_split']:,} split, {result['persons_merged']:,} "
                  f"merged; twin pairs merged: {result['twins_merged']}")
    table = Table(title="Recall by source pair")
    table.add_column("sources")
    table.add_column("true pairs", justify="right")
    table.add_column("recall", justify="right")
    for pair, facts in result["recall_by_source_pair"].items():
        table.add_row(pair, f"{facts['true_pairs']:,}", f"{facts['recall']:.4f}")
    console.print(table)
    _print_family_scores(console, result)


@app.command(name="extract")
def extract_command(
    bundles: list[Path] = typer.Argument(..., help="The bundles the spine was linked from "
                                                   "(their content.parquet is extracted)."),
    spine: Path = typer.Option(..., "--spine", help="The spine (a DuckDB file)."),
    request: Path = typer.Option(..., "--request", help="The researcher's request (YAML)."),
    out: Path = typer.Option(..., "--out", help="The extract's folder (must not exist, or be "
                                                "empty)."),
    release_key: Path | None = typer.Option(None, "--release-key",
                                            help="A release secret file (from linkage keygen) "
                                                 "instead of the one kept in the spine."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Cut one project's extract: its cohort, the requested fields, family keys, and
    disclosure-controlled tables, under the project's own pseudonyms.

    Identifiers (UPN, names, full DOB or postcode, provider ids, tokens) are refused. Counts
    below 6 are suppressed, with secondary suppression; national figures are rounded to 10.
    """
    from linkage.pseudonymise.bundle import BundleError
    from linkage.pseudonymise.keys import KeyError_
    from linkage.release.extract import ReleaseError, extract
    from linkage.release.request import RequestError, load_request
    from linkage.spine.store import SpineError

    if not spine.is_file():
        fail(f"{spine}: no such spine")
    try:
        with _status("cutting the extract", quiet or as_json):
            manifest = extract(spine, load_request(request), out, bundles, release_key)
    except (BundleError, KeyError_, ReleaseError, RequestError, SpineError) as problem:
        fail(str(problem))
    operator = manifest.pop("operator")
    if as_json:
        sys.stdout.write(json.dumps(manifest, sort_keys=True, default=str) + "\n")
        return
    if quiet:
        return
    err.print(f"extract for {manifest['project']} written to {out}: "
              f"{len(manifest['files'])} files from spine version {manifest['spine_version']}")
    err.print(f"{operator['cohort']} {operator['period']}: {operator['deduplicated']:,} "
              f"children deduplicated across LAs; the LAs' own counts sum to "
              f"{operator['naive_sum_of_las']:,} (exact figures: for the operator, not released)")


@app.command()
def report(
    spine: Path = typer.Option(..., "--spine", help="The spine to report on."),
    out: Path = typer.Option(..., "--out", help="The HTML file to write."),
    truth: Path | None = typer.Option(None, "--truth", help="A synthetic world's truth/ "
                                                            "folder: adds accuracy figures."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's figures as JSON."),
) -> None:
    """Write the linkage quality report: one HTML file that works offline.

    Match rates by source and by group (ethnicity, sex, age band, LA, movers) with the largest
    gaps called out, the match-weight distribution and threshold, the model's m and u, records
    left unlinked and why, persons by sources, and family keys. Counts of 1 to 5 are hidden.
    """
    from linkage.quality.evaluate import EvaluationError
    from linkage.quality.report import write_report
    from linkage.spine.store import SpineError

    if not spine.is_file():
        fail(f"{spine}: no such spine")
    try:
        data = write_report(spine, out, truth)
    except (EvaluationError, SpineError, ValueError) as problem:
        fail(str(problem))
    except OSError as problem:
        fail(f"{out}: cannot be written ({problem.strerror})")
    if as_json:
        sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
    elif not quiet:
        err.print(f"report on spine version {data['version']} written to {out}")


def _status(message: str, quiet: bool):
    """A spinner on stderr while ``message`` is under way (nothing when quiet)."""
    from contextlib import nullcontext

    return nullcontext() if quiet else err.status(message)


def _print_family_scores(console: Console, result: dict) -> None:
    table = Table(title="Family keys")
    for column in ("key", "true", "precision", "recall"):
        table.add_column(column, justify="left" if column == "key" else "right")
    adopters, siblings, mothers = (result["child_adopter"], result["siblings"],
                                   result["mother_child"])
    table.add_row("child-adopter links", f"{adopters['true']:,}",
                  f"{adopters['precision']:.4f}", f"{adopters['recall']:.4f}")
    table.add_row("sibling pairs", f"{siblings['true_pairs']:,}",
                  f"{siblings['pair_precision']:.4f}", f"{siblings['pair_recall']:.4f}")
    table.add_row("mother-child links", f"{mothers['true']:,}",
                  f"{mothers['precision']:.4f}", f"{mothers['recall']:.4f}")
    console.print(table)
    console.print(f"sibling groups recovered exactly: {siblings['groups_exact']:.1%} of "
                  f"{siblings['true_groups']:,}")


def _print_check(summary: dict) -> None:
    console = Console()
    console.print(f"[bold]{summary['source']}[/]: {summary['files']} file(s), "
                  f"{summary['records_in']:,} records in, {summary['records_out']:,} out, "
                  f"{summary['records_flagged']:,} flagged, "
                  f"{summary['records_rejected']:,} rejected")
    if summary["flags"]:
        table = Table(title="Problems found (rows are file:line)")
        for column in ("flag", "records", "meaning", "first rows"):
            table.add_column(column, justify="right" if column == "records" else "left")
        for code, count in summary["flags"].items():
            rows = ", ".join(_short(r) for r in summary["flag_rows"][code][:3])
            table.add_row(code, f"{count:,}", summary["flag_meanings"][code], rows)
        console.print(table)
    fields = ", ".join(f"{k} {v:.0%}" for k, v in summary["completeness"].items())
    console.print(f"completeness: {fields}")


def _short(place: str) -> str:
    """``…/2024/header.csv:12`` rather than the whole path."""
    path = Path(place)
    return f"{path.parent.name}/{path.name}"


def write_text_atomically(path: Path, text: str) -> None:
    """Write under a temporary name, then move into place: no half-written file is left."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.replace(path)



def _add_plugin_commands() -> None:
    """Commands other packages register under the entry point group ``linkage.commands``.

    ``linkage synth`` comes this way from the ``synthetic`` package: the linkage library
    itself never imports the generator, which holds the truth.
    """
    for entry in entry_points(group="linkage.commands"):
        app.command(name=entry.name)(entry.load())


_add_plugin_commands()


def run() -> None:
    """The console script: the app, with unexpected errors reported without a traceback.

    A traceback can carry values from the data, so it is shown only with LINKAGE_DEBUG=1.
    """
    try:
        app()
    except Exception as problem:
        if os.environ.get("LINKAGE_DEBUG") == "1":
            raise
        err.print(f"[bold red]internal error[/] ({type(problem).__name__}). Nothing was "
                  "written in an unfinished state; rerun with LINKAGE_DEBUG=1 for details "
                  "and report it.")
        sys.exit(1)


if __name__ == "__main__":
    run()
