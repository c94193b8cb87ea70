"""A Spark standalone cluster on this machine, from the pip-installed pyspark (no download).

One master and its workers, each a JVM started with pyspark's ``bin/spark-class``, bound to
127.0.0.1 on free ports, with their work and log folders under one temporary folder. It is
what the test suite links against, and a way to try ``linkage link --spark-master`` before a
real cluster is at hand::

    python -m linkage.match.standalone --workers 2     # prints the master URL; Ctrl-C stops it

:class:`StandaloneCluster` is a context manager: leaving it stops every JVM it started (the
executors the workers launched included), whatever happened inside.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"  # loopback only: nothing of the cluster is reachable from elsewhere


class ClusterStartError(Exception):
    """The master or a worker did not come up in time; the message ends with its log's tail."""


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def spark_home() -> Path:
    """The installed pyspark's folder, which holds ``bin/spark-class`` and Spark's jars."""
    import pyspark

    return Path(pyspark.__file__).resolve().parent


class StandaloneCluster:
    """A master and ``workers`` workers on this machine, each offering ``worker_cores`` cores
    and ``worker_memory`` (Spark's notation: 2g) to executors."""

    def __init__(self, workers: int = 2, worker_cores: int = 1, worker_memory: str = "2g",
                 start_timeout: float = 180.0, folder: Path | None = None) -> None:
        self.workers = workers
        self.worker_cores = worker_cores
        self.worker_memory = worker_memory
        self.start_timeout = start_timeout
        self._own_folder = folder is None
        self.folder = Path(folder or tempfile.mkdtemp(prefix="linkage-spark-cluster-"))
        self.port = free_port()
        self.webui_port = free_port()
        self.master_url = f"spark://{HOST}:{self.port}"
        self._processes: list[tuple[subprocess.Popen, Path]] = []
        self._starting: threading.Thread | None = None
        self._start_failure: BaseException | None = None

    # ------------------------------------------------------------------ starting

    def start_in_background(self) -> "StandaloneCluster":
        """Begin :meth:`start` in a thread and return at once, so that other work (building
        a world, a DuckDB link) overlaps the JVMs' start; :meth:`wait_until_started` then
        waits for it and raises what it raised."""
        def starting() -> None:
            try:
                self.start()
            except BaseException as problem:  # handed to the waiting thread
                self._start_failure = problem

        self._starting = threading.Thread(target=starting, name="spark-cluster-start",
                                          daemon=True)
        self._starting.start()
        return self

    def wait_until_started(self) -> None:
        """Return once a :meth:`start_in_background` has finished; raise its failure."""
        if self._starting is not None:
            self._starting.join()
        if self._start_failure is not None:
            raise self._start_failure

    def start(self) -> "StandaloneCluster":
        """Start the master, then the workers, and return once every worker is registered
        with the master (ClusterStartError after ``start_timeout`` seconds)."""
        try:
            self._launch("master", "org.apache.spark.deploy.master.Master",
                         "--host", HOST, "--port", str(self.port),
                         "--webui-port", str(self.webui_port))
            self._wait_for(lambda state: state.get("status") == "ALIVE", "the master")
            # the master's own word for its address (it moves up a port if this one was
            # taken between free_port and its start)
            self.master_url = self.state()["url"]
            for number in range(1, self.workers + 1):
                work = self.folder / f"worker-{number}"
                work.mkdir(parents=True, exist_ok=True)
                self._launch(f"worker-{number}", "org.apache.spark.deploy.worker.Worker",
                             # 0: ports of the JVM's choosing, found in the master's JSON
                             "--host", HOST, "--port", "0", "--webui-port", "0",
                             "--cores", str(self.worker_cores),
                             "--memory", self.worker_memory,
                             "--work-dir", str(work), self.master_url)
            self._wait_for(lambda state: self._alive_workers(state) >= self.workers,
                           f"{self.workers} workers registered with the master")
        except BaseException:
            self.stop()
            raise
        return self

    def _launch(self, name: str, main_class: str, *arguments: str) -> None:
        log = self.folder / f"{name}.log"
        environment = {**os.environ, "SPARK_HOME": str(spark_home()),
                       "SPARK_LOCAL_IP": HOST, "SPARK_LOG_DIR": str(self.folder),
                       # the daemons only keep the books: the executors get the memory
                       "SPARK_DAEMON_MEMORY": "256m"}
        with open(log, "wb") as output:
            # a session of its own, so that stopping it reaches the JVM and the executors
            # it forks, and a Ctrl-C meant for the caller does not
            process = subprocess.Popen([str(spark_home() / "bin" / "spark-class"), main_class,
                                        *arguments], stdout=output, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, env=environment,
                                       cwd=self.folder, start_new_session=True)
        self._processes.append((process, log))

    def _wait_for(self, ready, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            for process, log in self._processes:
                if process.poll() is not None:
                    raise ClusterStartError(f"{log.stem} stopped (exit {process.returncode}) "
                                            f"before {what}:\n{_tail(log)}")
            try:
                if ready(self.state()):
                    return
            except (OSError, ValueError):  # the web UI is not listening yet
                pass
            time.sleep(0.5)
        logs = "\n".join(f"--- {log.name}\n{_tail(log)}" for _, log in self._processes)
        raise ClusterStartError(f"no {what} after {self.start_timeout:g} s:\n{logs}")

    @staticmethod
    def _alive_workers(state: dict) -> int:
        return sum(worker.get("state") == "ALIVE" for worker in state.get("workers", []))

    # ------------------------------------------------------------------ looking at it

    def state(self) -> dict:
        """The master's own account of the cluster (its web UI's JSON): workers,
        applications running and completed."""
        address = f"http://{HOST}:{self.webui_port}/json/"
        with urllib.request.urlopen(address, timeout=5) as answer:
            return json.load(answer)

    # ------------------------------------------------------------------ stopping

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the workers, then the master (SIGTERM to each one's process group, SIGKILL
        for any still there after ``timeout`` seconds), and remove the cluster's folder if
        this object made it."""
        starting = self._starting
        if starting is not None and starting is not threading.current_thread():
            starting.join()  # a start still under way ends within start_timeout
        for process, _ in reversed(self._processes):
            _signal(process, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process, _ in reversed(self._processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
            # the group too: an executor may outlive its worker's JVM
            _signal(process, signal.SIGKILL)
            process.wait()
        self._processes.clear()
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> "StandaloneCluster":
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()


def _signal(process: subprocess.Popen, which: signal.Signals) -> None:
    """Send ``which`` to the process group this module started (its id is the process's)."""
    # ProcessLookupError: already gone, with everything it started
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, which)


def _tail(log: Path, lines: int = 20) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def main() -> None:
    """Start a cluster, print its master URL, and keep it until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-cores", type=int, default=1)
    parser.add_argument("--worker-memory", default="2g")
    options = parser.parse_args()

    def interrupted(number: int, frame: object) -> None:
        raise KeyboardInterrupt

    # Ctrl-C, and a plain kill too, go through the with-block's stop: no JVM left behind
    # (SIGINT is ignored by default in a job started in the background)
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    with StandaloneCluster(options.workers, options.worker_cores,
                           options.worker_memory) as cluster:
        print(f"{cluster.master_url}  (web UI http://{HOST}:{cluster.webui_port}/; "
              "Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()


if __name__ == "__main__":
    main()
