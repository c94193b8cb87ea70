"""`linkage link --backend spark --spark-master URL` on a real Spark standalone cluster: a
master and two workers started on this machine from the installed pyspark (each worker one
core and 2 GiB, all on 127.0.0.1), giving the same persons as DuckDB."""

import json
import time
import urllib.request
from pathlib import Path

import duckdb
import pytest

from linkage.cli import app
from linkage.match.standalone import StandaloneCluster, free_port
from synthetic.world import build_world, load_config, write_world
from tests.conftest import hash_world
from tests.output import said
from tests.test_spark import link, patterns, persons, runner


@pytest.fixture(scope="module")
def world_bundles(tmp_path_factory, linkage_key):
    root = tmp_path_factory.mktemp("spark_cluster_world")
    write_world(build_world(1500, 4, load_config()), root / "world")
    return hash_world(root / "world", root / "bundles", linkage_key)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A master and two workers, starting while the world is built and linked on DuckDB (the
    test waits with ``wait_until_started``); every JVM is stopped when the module's tests are
    done, pass or fail. A slow machine gets three minutes to start them."""
    with pytest.MonkeyPatch.context() as patch:
        # the driver (this process) listens on the loopback only, as the cluster does
        patch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
        starting = StandaloneCluster(workers=2, worker_cores=1, worker_memory="2g",
                                     start_timeout=180,
                                     folder=tmp_path_factory.mktemp("spark_cluster"))
        try:
            yield starting.start_in_background()
        finally:
            starting.stop()


def scored_pairs(spine) -> int:
    con = duckdb.connect(str(spine), read_only=True)
    try:
        return con.execute("SELECT count(*) FROM scored_pair").fetchall()[0][0]
    finally:
        con.close()


def test_the_cluster_gives_the_same_persons_as_duckdb(cluster, world_bundles, tmp_path):
    started = time.perf_counter()
    on_duckdb = link(tmp_path / "duckdb.duckdb", world_bundles)
    duckdb_seconds = time.perf_counter() - started
    cluster.wait_until_started()
    earlier = {app["id"] for app in cluster.state()["completedapps"]}

    started = time.perf_counter()
    on_cluster = link(tmp_path / "cluster.duckdb", world_bundles, "--backend", "spark",
                      "--spark-master", cluster.master_url,
                      "--model", str(tmp_path / "duckdb.duckdb.model.json"))
    cluster_seconds = time.perf_counter() - started
    print(f"link of {on_duckdb['records']:,} records: DuckDB {duckdb_seconds:.1f} s, "
          f"the standalone cluster {cluster_seconds:.1f} s")

    assert on_cluster["pairs_scored"] == on_duckdb["pairs_scored"] > 0
    assert on_cluster["persons"] == on_duckdb["persons"]
    assert persons(tmp_path / "cluster.duckdb") == persons(tmp_path / "duckdb.duckdb")
    assert on_cluster["families"] == on_duckdb["families"]
    # the executors' Parquet parts all reached the folder DuckDB read on the driver
    assert scored_pairs(tmp_path / "cluster.duckdb") == on_cluster["pairs_scored"]
    assert patterns(tmp_path / "cluster.duckdb") == patterns(tmp_path / "duckdb.duckdb")

    # and it ran on the cluster: the master saw the application finish, and each worker
    # hosted one of its executors (the driver runs no task when it has a master)
    state = cluster.state()
    [application] = [app for app in state["completedapps"] if app["id"] not in earlier]
    assert application["name"] == "linkage" and application["state"] == "FINISHED"
    hosts = [worker for worker in state["workers"]
             if application["id"] in {e["appid"] for e in worker_state(worker)
                                      ["finishedexecutors"]}]
    assert len(hosts) == 2, f"executors of {application['id']} ran on {len(hosts)} workers"


def worker_state(worker: dict) -> dict:
    """A worker's own account (its web UI's JSON): the executors it ran."""
    with urllib.request.urlopen(worker["webuiaddress"] + "/json/", timeout=10) as answer:
        return json.load(answer)


def test_a_master_that_cannot_be_reached_is_one_line_and_exit_1(world_bundles, tmp_path):
    nobody = f"spark://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--backend",
                                  "spark", "--spark-master", nobody,
                                  *map(str, world_bundles)])
    assert result.exit_code == 1
    assert f"cannot reach the Spark master {nobody} (is it running" in said(result)
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "s.duckdb").exists()


@pytest.mark.parametrize("master", ["127.0.0.1:7077", "spark:/127.0.0.1:7077", "locale"])
def test_a_malformed_master_is_refused(world_bundles, tmp_path, master):
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--backend",
                                  "spark", "--spark-master", master,
                                  *map(str, world_bundles)])
    assert result.exit_code == 1 and "not a Spark master URL" in said(result)


def test_the_master_comes_from_the_environment(world_bundles, tmp_path, monkeypatch):
    nobody = f"spark://127.0.0.1:{free_port()}"
    monkeypatch.setenv("LINKAGE_SPARK_MASTER", nobody)
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"), "--backend",
                                  "spark", *map(str, world_bundles)])
    assert result.exit_code == 1 and f"cannot reach the Spark master {nobody}" in said(result)


def test_spark_master_needs_the_spark_backend(world_bundles, tmp_path):
    result = runner.invoke(app, ["link", "--spine", str(tmp_path / "s.duckdb"),
                                  "--spark-master", "spark://127.0.0.1:7077",
                                  *map(str, world_bundles)])
    assert result.exit_code == 1 and "only with --backend spark" in said(result)



def test_a_cluster_with_no_room_for_an_executor_is_given_up_in_one_line(cluster, world_bundles,
                                                                        tmp_path):
    """The master accepts the run but no worker offers 4 GiB: after executor_wait_seconds the
    run stops with what to check, instead of waiting for ever."""
    site = tmp_path / "site"
    site.mkdir()
    settings = (Path(__file__).resolve().parent.parent / "configs" / "spark.yaml").read_text()
    settings = settings.replace("executor_memory: 2g", "executor_memory: 4g")
    settings = settings.replace("executor_wait_seconds: 120", "executor_wait_seconds: 5")
    (site / "spark.yaml").write_text(settings)
    cluster.wait_until_started()
    result = runner.invoke(app, ["--config", str(site), "link", "--spine",
                                 str(tmp_path / "s.duckdb"), "--backend", "spark",
                                 "--spark-master", cluster.master_url,
                                 *map(str, world_bundles)])
    assert result.exit_code == 1, result.output
    assert (f"no executor joined the run on {cluster.master_url} within 5 s" in said(result))
    assert "Traceback" not in result.output
    assert not cluster.state()["activeapps"], "the refused run is still on the master"


def test_scored_pairs_that_never_reached_the_driver_stop_the_run(tmp_path):
    """Executors of a multi-machine cluster without a shared folder write their parts to their
    own disks: the driver finds fewer pairs than were scored and must not write the spine."""
    from linkage.match.spark import SparkClusterError, _check_parts_arrived

    parts = tmp_path / "parts"
    parts.mkdir()
    con = duckdb.connect()
    con.execute(f"COPY (SELECT range AS record_l FROM range(3)) TO '{parts}/part-0.parquet' "
                "(FORMAT parquet)")
    _check_parts_arrived(con, parts, 3)
    with pytest.raises(SparkClusterError, match="wrote 5 scored pairs but 3 reached"):
        _check_parts_arrived(con, parts, 5)
    with pytest.raises(SparkClusterError, match=r"set shared_folder in configs/spark\.yaml"):
        _check_parts_arrived(con, tmp_path / "nothing", 5)
