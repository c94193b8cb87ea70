"""The ``linkage`` command line: one thin command per verb of the flow."""

import json
import os
import sys
import time
from importlib.metadata import entry_points
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from linkage import __version__
from linkage.config import ENV_VAR, ConfigError, use_site_folder
from linkage.console import database_error_message, err, fail, os_error_message
from linkage.delivery_cli import hash_delivery_command
from linkage.paths import PathProblem, existing, new_file, new_folder, spine_file
from linkage.sources.schema import SOURCE_KINDS, SourceError


class _Commands(TyperGroup):
    """The command group: a bad configuration file, read by whichever command (plugins too),
    is a one-line message naming the file and field, with exit code 1; so is a file the
    operating system refuses to read or write (a full disk, a read-only folder), for every
    command in this one place."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (ConfigError, PathProblem) as problem:
            fail(str(problem))
        except OSError as problem:
            fail(os_error_message(problem))
        finally:
            # --config holds for this command only (a test runs many in one process)
            use_site_folder(None)


app = typer.Typer(
    cls=_Commands,
    help="Privacy-preserving record linkage for children's social care data in England.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def register_option():
    """The linkage unit's and custodian's register of providers' public signing keys."""
    return typer.Option(None, "--register", help="Folder of providers' public signing keys "
                                                 "(default: LINKAGE_REGISTER).")


def custodian_key_option(purpose: str):
    return typer.Option(None, "--custodian-key", help=f"The data custodian's private key: "
                                                      f"{purpose} (default: "
                                                      "LINKAGE_CUSTODIAN_KEY).")


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
    config: Path | None = typer.Option(
        None, "--config", envvar=ENV_VAR, show_envvar=False,
        help=f"This site's config folder (default: {ENV_VAR}): a file there replaces the "
             "packaged configs/ file of the same name."),
) -> None:
    """Options for every command: the version, and this site's configuration."""
    if version:
        print(__version__)
        raise typer.Exit(0)
    # always set, so one process running several commands (tests) never keeps an old folder;
    # the site's files are validated now, before the command reads anything
    site_files = use_site_folder(config)
    if config is not None and ctx.invoked_subcommand is None:
        # `linkage --config DIR` alone: a check of the site folder
        names = ", ".join(path.name for path in site_files) or "none"
        err.print(f"site config folder {config}: valid; its files: {names}; every other file "
                  "is the packaged one")


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
    from linkage.atomic import write_atomically
    from linkage.sources import read_source
    from linkage.sources.check_report import check_report, render_markdown

    if source not in SOURCE_KINDS:
        fail(f"--source {source}: not a source kind ({', '.join(SOURCE_KINDS)})")
    if report is not None:
        new_file(report, "the report")
    try:
        with err.status(f"reading {source} files"):
            data = read_source(source, paths, mapping, provider, period)
    except SourceError as problem:
        fail(str(problem))
    summary = check_report(data)
    if report is not None:
        text = (json.dumps(summary, indent=2) + "\n" if report.suffix.lower() == ".json"
                else render_markdown(summary))
        write_atomically(report, text)
    if as_json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    else:
        _print_check(summary)


@app.command()
def keygen(
    out: Path = typer.Option(..., "--out", help="Where to write the new key (never overwritten)."),
    keypair: bool = typer.Option(False, "--keypair",
                                 help="Make a recipient's key pair (the linkage unit's, or the "
                                      "data custodian's) instead: private key at OUT, public "
                                      "key at OUT.pub."),
    signing: bool = typer.Option(False, "--signing",
                                 help="Make a provider's signing key pair instead: private key "
                                      "at OUT, public key at OUT.pub (for the linkage unit's "
                                      "register)."),
) -> None:
    """Make a new random linkage key (256 bits, file mode 0600), or a key pair.

    The linkage key is shared with data providers only, never with the linkage unit. The
    linkage unit and the data custodian each make a --keypair and send the public half to
    providers; each provider makes a --signing pair and sends the public half to the linkage
    unit and custodian, who keep them in a register folder.
    """
    from linkage.pseudonymise.keys import KeyError_, generate_key_file, generate_keypair
    from linkage.pseudonymise.signing import SignatureError, generate_signing_keypair

    if keypair and signing:
        fail("give --keypair or --signing, not both")
    try:
        if keypair or signing:
            public = out.with_name(out.name + ".pub")
            (generate_keypair if keypair else generate_signing_keypair)(out, public)
            err.print(f"private key written to {out} (mode 600); public key to {public}")
        else:
            generate_key_file(out)
            err.print(f"linkage key written to {out} (mode 600). Share it with providers "
                      "only, by a secure route.")
    except (KeyError_, SignatureError) as problem:
        fail(str(problem))


@app.command(name="hash")
def hash_command(
    paths: list[Path] = typer.Argument(..., help="One provider's files or folders of one kind."),
    source: str = typer.Option(..., "--source", help="Source kind: " + ", ".join(SOURCE_KINDS)),
    provider: str = typer.Option(..., "--provider", help="Your provider code (LA or agency)."),
    out: Path = typer.Option(..., "--out", help="The bundle to write (a folder)."),
    key: Path | None = typer.Option(None, "--key", help="Linkage key file (default: the "
                                                        "LINKAGE_KEY environment variable)."),
    sign_key: Path | None = typer.Option(None, "--sign-key",
                                         help="Your signing key (default: LINKAGE_SIGNING_KEY)."),
    to_unit: Path | None = typer.Option(None, "--to-unit",
                                        help="The linkage unit's public key (default: "
                                             "LINKAGE_UNIT_PUBLIC_KEY)."),
    to_custodian: Path | None = typer.Option(None, "--to-custodian",
                                             help="The data custodian's public key (default: "
                                                  "LINKAGE_CUSTODIAN_PUBLIC_KEY)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="Mapping for --source generic."),
    period: int | None = typer.Option(None, "--period", min=1990, max=2100,
                                      help="Collection year if the file names do not say it."),
    workers: int = typer.Option(2, "--workers", min=1, help="Processes for hashing."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON on stdout."),
) -> None:
    """Read, validate and pseudonymise a provider's files into one signed bundle.

    The bundle holds a linkage part (keyed tokens, sealed to the linkage unit), a content part
    (the payload, sealed to the data custodian), manifest.json and your signature of it. No
    plaintext identifier is written: a leak guard checks the tokens and manifest and refuses
    to write if one appears.
    """
    from linkage.atomic import writing
    from linkage.pseudonymise.bundle import BundleError, write_bundle
    from linkage.pseudonymise.encryption import EncryptionError
    from linkage.pseudonymise.keys import KeyError_
    from linkage.pseudonymise.roles import provider_keys
    from linkage.sources import read_source

    if source not in SOURCE_KINDS:
        fail(f"--source {source}: not a source kind ({', '.join(SOURCE_KINDS)})")
    if out.exists():
        fail(f"{out}: exists already; a bundle is never overwritten")
    try:
        keys = provider_keys(key, sign_key, to_unit, to_custodian)
        with _status(f"reading {source} files", quiet):
            data = read_source(source, paths, mapping, provider, period)
        # a full disk or a read-only folder is reported on the bundle, not its staging name
        with _status(f"hashing {len(data.records):,} records", quiet), writing(out):
            written = write_bundle(data, keys, out, workers=workers)
    except (KeyError_, SourceError, BundleError, EncryptionError) as problem:
        fail(str(problem))
    manifest = written.manifest
    if as_json:
        sys.stdout.write(json.dumps(manifest, sort_keys=True) + "\n")
    elif not quiet:
        rows = manifest["rows"]
        err.print(f"bundle written to {out} (signed; parts sealed to the linkage unit and the "
                  f"custodian): {rows['in']:,} records in, {rows['out']:,} out, "
                  f"{rows['flagged']:,} flagged, {rows['rejected']:,} rejected; key "
                  f"fingerprint {manifest['key_fingerprint']}")
        _print_flag_counts(data)


app.command(name="hash-delivery")(hash_delivery_command)


@app.command(name="link")
def link_command(
    bundles: list[Path] = typer.Argument(None, help="Bundles to link (folders), any number: "
                                                    "new ones are added to those the spine "
                                                    "holds."),
    spine: Path = typer.Option(..., "--spine", help="The spine (a DuckDB file; made if new)."),
    replace: bool = typer.Option(False, "--replace", help="A bundle given may replace the "
                                                          "held bundle whose records it holds "
                                                          "(a corrected or cumulative file)."),
    withdraw: list[str] = typer.Option(None, "--withdraw", help="Leave out a bundle the spine "
                                                                "holds (its name, as listed in "
                                                                "the version); repeatable."),
    retrain: bool = typer.Option(False, "--retrain", help="Train a new model and decide every "
                                                          "person afresh (keys kept by "
                                                          "majority overlap)."),
    decisions: list[Path] = typer.Option(None, "--decisions", help="A clerical review's "
                                                                   "decisions (JSON from "
                                                                   "linkage review, or CSV "
                                                                   "record_l, record_r, "
                                                                   "decision); repeatable."),
    unit_key: Path | None = typer.Option(None, "--unit-key",
                                         help="The linkage unit's private key (default: "
                                              "LINKAGE_UNIT_KEY)."),
    register: Path | None = register_option(),
    model: Path | None = typer.Option(None, "--model", help="Reuse a trained model (JSON) "
                                                            "instead of training."),
    seed: int | None = typer.Option(None, "--seed", help="Seed person keys (for "
                                                         "reproducible test runs)."),
    wait: float = typer.Option(0, "--wait", min=0, help="If another run is updating the "
                                                        "spine, wait up to this many seconds."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    backend: str = typer.Option("duckdb", "--backend", help="duckdb (one machine) or spark "
                                                            "(pip install 'linkage[spark]')."),
    spark_master: str | None = typer.Option(
        None, "--spark-master", help="With --backend spark: the cluster's master URL "
                                     "(spark://HOST:PORT, yarn, k8s://...; default: "
                                     "LINKAGE_SPARK_MASTER, else local mode)."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Link bundles into the spine: a new version with stable person keys.

    The spine keeps every bundle it linked (its linkage part, still sealed), so a new
    delivery is linked by giving only its bundles: the spine's persons keep their records and
    keys, and new records join them or make new persons. A bundle holding records the spine
    already holds is refused unless --replace; a held bundle leaves only with --withdraw.
    Each bundle's signature is checked against the register; unsigned, edited or foreign
    bundles, and bundles hashed with different keys, are refused. The linkage parts are
    decrypted in memory only. The first link trains the model (u by random sampling, m by
    EM); later links reuse it unless new bundles bring new columns, --model is given or
    --retrain asks for a relink from scratch. It is saved beside the spine as
    SPINE.model.json. --decisions applies a clerical review (linkage review): a match puts
    its two records in one person, a non-match keeps them apart; the spine keeps them and
    applies them again at every later link.
    """
    import duckdb

    from linkage.match.rules import ModelError
    from linkage.match.spark import (
        SparkClusterError,
        SparkMissing,
        SparkModelError,
        check_reachable,
        master_in_force,
        require_pyspark,
    )
    from linkage.pipelines.link import Change, link
    from linkage.pseudonymise.bundle import BundleError
    from linkage.pseudonymise.encryption import EncryptionError
    from linkage.pseudonymise.keys import KeyError_
    from linkage.pseudonymise.roles import unit_keys
    from linkage.review.decisions import DecisionError
    from linkage.spine.lock import SpineBusy
    from linkage.spine.store import SpineError

    if backend not in ("duckdb", "spark"):
        fail(f"--backend {backend}: not a backend (duckdb, spark)")
    if spark_master is not None and backend != "spark":
        fail("--spark-master: only with --backend spark")
    if backend == "spark":
        try:
            require_pyspark()  # before opening any bundle
            spark_master = master_in_force(spark_master)
            if spark_master is not None:
                check_reachable(spark_master)
        except (SparkMissing, SparkClusterError) as problem:
            fail(str(problem))
    spine_file(spine, must_exist=False)
    existing(bundles or [], "a bundle", folder=True)
    existing(decisions or [], "a decisions file", folder=False)

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
        keys = unit_keys(unit_key, register)
        summary = link(spine, bundles or [], keys, model, seed, progress, wait, backend,
                       Change(replace, withdraw or [], retrain, decisions or []), spark_master)
    except (BundleError, EncryptionError, KeyError_, SpineBusy, SpineError,
            SparkMissing, SparkModelError, SparkClusterError, ModelError,
            DecisionError) as problem:
        fail(str(problem))
    except duckdb.Error as problem:  # writing the spine: a full disk, a read-only file
        fail(database_error_message(spine, problem))
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
    key: Path | None = typer.Option(None, "--key", help="The synthetic world's linkage key "
                                                        "(default: LINKAGE_KEY), to give the "
                                                        "truth's record ids the spine's "
                                                        "pseudonyms."),
    as_json: bool = typer.Option(False, "--json", help="Print every figure as JSON."),
) -> None:
    """Precision, recall and F1 of the spine's latest version against truth.

    Pairwise and B-cubed scores, persons split and merged, twin pairs merged, recall by
    source pair and by group (ethnicity, sex, age band, moved LA), and the family keys'
    precision and recall (child-adopter, sibling pairs, mother-child).
    """
    from linkage.pseudonymise.keys import KeyError_, load_key
    from linkage.quality.evaluate import EvaluationError, load_truth
    from linkage.quality.evaluate import evaluate as score
    from linkage.quality.families import evaluate_families
    from linkage.spine.store import SpineError, connect, current_records, family_tables

    spine_file(spine, must_exist=True)
    existing([truth], "a synthetic world's truth", folder=True)
    try:
        world_key = load_key(key)
        con = connect(spine, read_only=True)
        linked = current_records(con)
        families = family_tables(con)
        con.close()
        records, persons = load_truth(truth, world_key)
        result = score(linked, records, persons)
        result.update(evaluate_families(families, linked, records, persons, truth))
    except (EvaluationError, SpineError, KeyError_) as problem:
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
                                                   "(their content parts are extracted)."),
    spine: Path = typer.Option(..., "--spine", help="The spine (a DuckDB file)."),
    request: Path = typer.Option(..., "--request", help="The researcher's request (YAML)."),
    out: Path = typer.Option(..., "--out", help="The extract's folder (must not exist, or be "
                                                "empty)."),
    release_key: Path | None = typer.Option(None, "--release-key",
                                            help="A release secret file (from linkage keygen) "
                                                 "instead of the one derived from the "
                                                 "custodian's key."),
    custodian_key: Path | None = custodian_key_option("opens the content parts"),
    register: Path | None = register_option(),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the manifest as JSON."),
) -> None:
    """Cut one project's extract: its cohort, the requested fields, family keys, and
    disclosure-controlled tables, under the project's own pseudonyms.

    Run by the data custodian: its private key opens the bundles' content parts (the linkage
    unit's does not). Identifiers (UPN, names, full DOB or postcode, provider ids, tokens) are
    refused. Counts
    below 6 are suppressed, with secondary suppression; national figures are rounded to 10.
    """
    from linkage.pseudonymise.bundle import BundleError
    from linkage.pseudonymise.keys import KeyError_
    from linkage.pseudonymise.roles import custodian_keys
    from linkage.release.extract import ReleaseError, extract
    from linkage.release.request import RequestError, load_request
    from linkage.spine.store import SpineError

    spine_file(spine, must_exist=True)
    existing([request], "the request", folder=False)
    new_folder(out, "an extract")
    existing(bundles, "a bundle", folder=True)
    try:
        keys = custodian_keys(custodian_key, register)
        with _status("cutting the extract", quiet or as_json):
            manifest = extract(spine, load_request(request), out, bundles, keys, release_key)
    except (BundleError, KeyError_, ReleaseError, RequestError, SpineError) as problem:
        fail(str(problem))
    operator = manifest.pop("operator")
    if not operator["audit_logged"]:
        err.print(f"[yellow]warning:[/] {spine} is read-only: this extract is not in its audit "
                  f"log; keep {out}/manifest.json as its record")
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
    bundles: list[Path] = typer.Argument(None, help="With --custodian-key: the bundles, whose "
                                                    "content gives the breakdowns by group."),
    spine: Path = typer.Option(..., "--spine", help="The spine to report on."),
    out: Path = typer.Option(..., "--out", help="The HTML file to write."),
    truth: Path | None = typer.Option(None, "--truth", help="A synthetic world's truth/ "
                                                            "folder: adds accuracy figures."),
    key: Path | None = typer.Option(None, "--key", help="With --truth: the synthetic world's "
                                                        "linkage key (default: LINKAGE_KEY)."),
    custodian_key: Path | None = custodian_key_option(
        "adds the breakdowns by ethnicity, sex and age band"),
    register: Path | None = register_option(),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the report's figures as JSON."),
) -> None:
    """Write the linkage quality report: one HTML file that works offline.

    Match rates by source and by group (LA and movers; with the custodian's key and the
    bundles, also ethnicity, sex and age band) with their 95% intervals and the largest gaps
    called out, each identifier's completeness by source and the records that cannot link,
    the match-weight distribution, precision and recall against the threshold, the model's
    m and u with a sentence per level, records left unlinked and why, persons by sources,
    and family keys. Counts of 1 to 5 are hidden.
    """
    from linkage.pseudonymise.bundle import BundleError, open_bundles
    from linkage.pseudonymise.keys import KeyError_, load_key
    from linkage.pseudonymise.roles import custodian_keys
    from linkage.quality.evaluate import EvaluationError
    from linkage.quality.report import write_report
    from linkage.release.content import record_groups
    from linkage.spine.store import SpineError

    spine_file(spine, must_exist=True)
    new_file(out, "the report")
    existing([truth] if truth is not None else [], "a synthetic world's truth", folder=True)
    existing(bundles or [], "a bundle", folder=True)
    if custodian_key is not None and not bundles:
        fail("--custodian-key: give the bundles too; their content gives the breakdowns by "
             "group")
    try:
        groups = (record_groups(open_bundles(bundles, custodian_keys(custodian_key, register)))
                  if bundles else None)
        world_key = load_key(key) if truth is not None else None
        data = write_report(spine, out, truth, groups, world_key)
    except (EvaluationError, SpineError, ValueError, BundleError, KeyError_) as problem:
        fail(str(problem))
    if as_json:
        sys.stdout.write(json.dumps(data, sort_keys=True, default=str) + "\n")
    elif not quiet:
        err.print(f"report on spine version {data['version']} written to {out}")


@app.command(name="review")
def review_command(
    spine: Path = typer.Option(..., "--spine", help="The spine whose latest version to review."),
    out: Path = typer.Option(..., "--out", help="The HTML page to write."),
    within: float | None = typer.Option(None, "--within",
                                        help="Pairs within this many bits of the threshold "
                                             "(default: configs/review.yaml)."),
    limit: int | None = typer.Option(None, "--limit", min=1,
                                     help="At most this many pairs of each kind (default: "
                                          "configs/review.yaml)."),
    quiet: bool = typer.Option(False, "--quiet", help="Print nothing but errors."),
    as_json: bool = typer.Option(False, "--json", help="Print the page's summary as JSON."),
) -> None:
    """Write the clerical review page: one HTML file that works offline.

    It shows the pairs whose match weight is near the threshold, closest first, and persons
    whose records disagree, each by its agreement pattern (every comparison's level and bits,
    with the prior, summing to the match weight), whether it is in one person now, and each
    record's source, provider, period, person and family context; never an identifier, token
    or key. A reviewer marks Match or Non-match and saves the decisions, which the next
    `linkage link --decisions FILE` applies. Reads the spine only: no key is needed.
    """
    from linkage.pipelines.review import review
    from linkage.spine.store import SpineError

    if within is not None and not 0 < within <= 64:
        fail(f"--within {within}: must be more than 0 and at most 64 bits")
    spine_file(spine, must_exist=True)
    new_file(out, "the review page")
    try:
        summary = review(spine, out, within, limit)
    except SpineError as problem:
        fail(str(problem))
    if as_json:
        sys.stdout.write(json.dumps(summary, sort_keys=True) + "\n")
    elif not quiet:
        shown = summary["shown"]
        err.print(f"review page of spine version {summary['version']} written to {out}: "
                  f"{shown['near_threshold']} pairs near the threshold, "
                  f"{shown['persons_disagreeing']} persons whose records disagree")


@app.command()
def explain(
    records: list[str] = typer.Argument(None, help="Records by their unique id, "
                                                   "source|provider|period|record_id (as the "
                                                   "spine's person_record holds them; quote "
                                                   "each: | is the shell's pipe)."),
    spine: Path = typer.Option(..., "--spine", help="The spine whose latest version to "
                                                    "explain."),
    person: str | None = typer.Option(None, "--person", help="Explain every record of this "
                                                             "person key instead."),
    html: Path | None = typer.Option(None, "--html", help="Also write an offline HTML view: "
                                                          "each pair's waterfall as a chart."),
    as_json: bool = typer.Option(False, "--json", help="Print the explanation as JSON."),
) -> None:
    """Why records were linked or left apart: the waterfall of match weights of each pair.

    One record: every pair scored with it. Two or more: each pair among them. --person: each
    pair of one person's records. For each pair, the prior, then each comparison's agreement
    level and weight in bits (term-frequency adjustment apart), summing to the pair's match
    weight and probability; whether clustering considered it; whether the two are one person
    now. Read from the spine alone: agreement levels, never a value.
    """
    from linkage.pipelines.explain import ExplainError
    from linkage.pipelines.explain import explain as explained
    from linkage.quality.explain_page import explain_page
    from linkage.spine.store import SpineError

    spine_file(spine, must_exist=True)
    if html is not None:
        new_file(html, "the HTML view")
    if records and person is not None:
        fail("give records or --person, not both")
    try:
        result = explained(spine, records or [], person)
    except (ExplainError, SpineError) as problem:
        fail(str(problem))
    if html is not None:
        from linkage.atomic import write_atomically

        write_atomically(html, explain_page(result))
    if as_json:
        sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
        return
    _print_explanation(result)


def _print_explanation(result: dict) -> None:
    console = Console()
    if not result["pairs"]:
        console.print("no pair to explain: a person of one record, or a record that no pair "
                      "was scored with at a match probability of 0.1 or more")
    for pair in result["pairs"]:
        console.print(f"[bold]{pair['record_l']}[/bold] and [bold]{pair['record_r']}[/bold]: "
                      f"{pair['verdict']}", highlight=False)
        steps = pair.get("waterfall")
        if not steps:
            continue
        table = Table(show_edge=False)
        for column in ("comparison", "level", "weight (bits)"):
            table.add_column(column, justify="right" if "weight" in column else "left")
        table.add_row("prior", "two records picked at random", f"{steps['prior_weight']:+.2f}")
        for step in steps["comparisons"]:
            tf = step["term_frequency_weight"]
            table.add_row(step["comparison"], step["level"] + (
                f" (term frequency {tf:+.2f})" if tf else ""), f"{step['weight']:+.2f}")
        table.add_row("match weight", f"probability {steps['match_probability']:.4f}",
                      f"{steps['match_weight']:+.2f}")
        console.print(table)


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


def _print_flag_counts(data) -> None:
    """The records flagged, by flag (``linkage check`` lists their rows)."""
    from linkage.sources.check_report import check_report

    counts = check_report(data)["flags"]
    if counts:
        err.print("flags: " + ", ".join(f"{code} {count:,}" for code, count in counts.items())
                  + " (linkage check names their files and rows)")


def _short(place: str) -> str:
    """``…/2024/header.csv:12`` rather than the whole path."""
    path = Path(place)
    return f"{path.parent.name}/{path.name}"


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
