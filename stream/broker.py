"""Which Kafka broker to talk to, and the local single-node broker for machines without Docker.

Order of choice (``resolve_bootstrap``): ``KAFKA_BOOTSTRAP_SERVERS`` if set; else a testcontainers
Kafka when a Docker engine answers; else the local Apache Kafka broker pinned in
``deploy/kafka/pom.xml``, run from Maven-resolved jars on the local JVM (KRaft, one node).

``python -m stream.broker up|down|status`` (``make kafka-up`` / ``make kafka-down``) drives the
local broker: ``up`` is idempotent, fetches the jars on first use, formats storage once, starts the
JVM in the background and returns only when the broker answers.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model.errors import BrokerError
from stream.config import REPO_ROOT, cache_dir, env, env_int

log = logging.getLogger(__name__)

DEPLOY_DIR = REPO_ROOT / "deploy" / "kafka"
JAR_DIR = DEPLOY_DIR / "target" / "lib"
DEFAULT_PORT = 9092


@dataclass(frozen=True)
class LocalBrokerPaths:
    """Files of one local broker instance, all under the cache directory."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def pid_file(self) -> Path:
        return self.root / "broker.pid"

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"


def _paths(port: int) -> LocalBrokerPaths:
    return LocalBrokerPaths(cache_dir() / f"kafka-{port}")


def _port() -> int:
    return env_int("XORSTREAM_KAFKA_PORT", DEFAULT_PORT)


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read_pid(paths: LocalBrokerPaths) -> int | None:
    try:
        pid = int(paths.pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if _pid_alive(pid) else None


def fetch_jars() -> Path:
    """Resolve the pinned broker jars with Maven into deploy/kafka/target/lib (once)."""
    marker = JAR_DIR / ".complete"
    if marker.exists():
        return JAR_DIR
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerError(
            "Maven (mvn) is needed to fetch the Kafka broker jars: install it (apt-get install maven)"
            " or set KAFKA_BOOTSTRAP_SERVERS to an existing broker"
        )
    log.info("fetching Kafka broker jars with Maven (first run only)")
    result = subprocess.run(
        [
            mvn,
            "-q",
            "-B",
            "dependency:copy-dependencies",
            f"-DoutputDirectory={JAR_DIR}",
            "-DincludeScope=runtime",
        ],
        cwd=DEPLOY_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError(
            f"mvn could not fetch the Kafka jars:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    marker.write_text("ok\n")
    return JAR_DIR


def _java() -> str:
    java = shutil.which("java")
    if java is None:
        raise BrokerError(
            "Java 17+ is needed for the local Kafka broker: apt-get install openjdk-17-jre"
        )
    return java


def _classpath() -> str:
    return os.pathsep.join(str(p) for p in sorted(fetch_jars().glob("*.jar")))


def _write_properties(paths: LocalBrokerPaths, port: int) -> None:
    template = (DEPLOY_DIR / "server.properties").read_text()
    text = (
        template.replace("@PORT@", str(port))
        .replace("@CONTROLLER_PORT@", str(port + 1))
        .replace("@DATA_DIR@", str(paths.data))
    )
    paths.properties.write_text(text)


def _format_storage(paths: LocalBrokerPaths) -> None:
    if (paths.data / "meta.properties").exists():
        return
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    result = subprocess.run(
        [
            _java(),
            "-cp",
            _classpath(),
            f"-Dkafka.logs.dir={paths.logs}",
            f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "-t",
            cluster_id,
            "-c",
            str(paths.properties),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BrokerError(f"formatting Kafka storage failed:\n{result.stdout}{result.stderr}")


def wait_until_ready(
    bootstrap: str, timeout_s: float = 90.0, alive: Callable[[], bool] | None = None
) -> None:
    """Block until the broker answers a metadata request; BrokerError after ``timeout_s``."""
    from kafka import KafkaAdminClient  # the Kafka client is only needed once a broker exists

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    # Refused connections are expected while the broker starts: keep the client quiet and
    # report the last error only if it never answers.
    kafka_log = logging.getLogger("kafka")
    level = kafka_log.level
    kafka_log.setLevel(logging.CRITICAL)
    try:
        while time.monotonic() < deadline:
            if alive is not None and not alive():
                raise BrokerError(
                    "the local Kafka broker exited while starting; see its server.log"
                )
            try:
                admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
                try:
                    admin.list_topics()
                    return
                finally:
                    admin.close()
            except Exception as exc:  # noqa: BLE001 - any failure means "not ready yet"
                last = exc
                time.sleep(0.5)
    finally:
        kafka_log.setLevel(level)
    raise BrokerError(
        f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s (last error: {last})"
    )


def local_up(port: int | None = None, timeout_s: float = 120.0) -> str:
    """Start the local broker unless it already runs; return its bootstrap address."""
    port = port or _port()
    paths = _paths(port)
    bootstrap = f"127.0.0.1:{port}"
    pid = _read_pid(paths)
    if pid is not None:
        wait_until_ready(bootstrap, timeout_s, alive=lambda: _pid_alive(pid))
        return bootstrap
    if _port_open(port):
        raise BrokerError(
            f"port {port} is taken by another process; stop it or set XORSTREAM_KAFKA_PORT"
        )
    for d in (paths.root, paths.data, paths.logs):
        d.mkdir(parents=True, exist_ok=True)
    _write_properties(paths, port)
    _format_storage(paths)
    # The JVM flags of Kafka's own kafka-server-start.sh / kafka-run-class.sh: a fixed 1 GiB heap
    # and G1 aiming at 20 ms pauses (the JVM's default aim, 200 ms, shows up in the tail latency).
    cmd = [
        _java(),
        "-Xms1g",
        "-Xmx1g",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        f"-Dkafka.logs.dir={paths.logs}",
        f"-Dlog4j2.configurationFile={DEPLOY_DIR / 'log4j2.properties'}",
        "-cp",
        _classpath(),
        "kafka.Kafka",
        str(paths.properties),
    ]
    with open(paths.logs / "stdout.log", "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    paths.pid_file.write_text(f"{proc.pid}\n")
    log.info("local Kafka broker starting, pid %d, logs in %s", proc.pid, paths.logs)
    try:
        wait_until_ready(bootstrap, timeout_s, alive=lambda: proc.poll() is None)
    except BrokerError:
        local_down(port)
        raise
    return bootstrap


def local_down(port: int | None = None, timeout_s: float = 30.0) -> bool:
    """Stop the local broker (SIGTERM, then SIGKILL after ``timeout_s``). True if one was running."""
    port = port or _port()
    paths = _paths(port)
    pid = _read_pid(paths)
    if pid is None:
        paths.pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.2)
    if _pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
        _reap(pid)
    paths.pid_file.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    """Collect our own exited child, so a zombie does not look alive to ``os.kill(pid, 0)``."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def local_running(port: int | None = None) -> bool:
    """True when the local broker of ``port`` (default: the configured one) is running."""
    return _read_pid(_paths(port or _port())) is not None


def local_status(port: int | None = None) -> str:
    port = port or _port()
    pid = _read_pid(_paths(port))
    if pid is None:
        return f"local Kafka broker on port {port}: not running"
    return f"local Kafka broker on port {port}: running, pid {pid}, bootstrap 127.0.0.1:{port}"


def docker_engine_available() -> bool:
    """True when a Docker engine answers (the docker CLI alone is not enough)."""
    try:
        import docker  # installed with testcontainers

        client = docker.from_env(timeout=3)
        client.ping()
        return True
    except Exception:  # noqa: BLE001 - any failure means "no engine"
        return False


@dataclass
class BrokerHandle:
    """A broker to use, where it came from, and how to stop it if we started it."""

    bootstrap: str
    source: str  # "env", "testcontainers" or "local"
    _stop: Callable[[], None] | None = None

    def stop(self) -> None:
        if self._stop is not None:
            self._stop()
            self._stop = None


KAFKA_IMAGE = "apache/kafka:4.1.1"  # keep in step with deploy/kafka/pom.xml and docker-compose.yml


def resolve_bootstrap(stop_local_on_exit: bool = False) -> BrokerHandle:
    """Pick the broker: KAFKA_BOOTSTRAP_SERVERS, else testcontainers with Docker, else local."""
    configured = env("KAFKA_BOOTSTRAP_SERVERS")
    if configured:
        return BrokerHandle(configured, "env")
    if docker_engine_available():
        from testcontainers.kafka import KafkaContainer

        container = KafkaContainer(KAFKA_IMAGE).with_kraft()
        container.start()
        return BrokerHandle(container.get_bootstrap_server(), "testcontainers", container.stop)
    bootstrap = local_up()
    return BrokerHandle(bootstrap, "local", local_down if stop_local_on_exit else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stream.broker",
        description="Run the local single-node Apache Kafka broker (KRaft) from Maven-resolved jars. "
        "Data and logs live in $XORSTREAM_CACHE (default ~/.cache/xorstream)/kafka-PORT.",
    )
    parser.add_argument(
        "action",
        choices=["up", "down", "status", "fetch"],
        help="up: start if not running and wait until it answers; down: stop; "
        "status: say whether it runs; fetch: only download the jars",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"client port (default $XORSTREAM_KAFKA_PORT or {DEFAULT_PORT}); "
        "the controller uses port+1",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("kafka").setLevel(logging.WARNING)
    try:
        if args.action == "up":
            print(local_up(args.port))
        elif args.action == "down":
            print("stopped" if local_down(args.port) else "not running")
        elif args.action == "fetch":
            print(fetch_jars())
        else:
            print(local_status(args.port))
    except BrokerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
