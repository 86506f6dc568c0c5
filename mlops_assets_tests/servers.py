"""Real servers for integration tests, each on 127.0.0.1 on a free port, stopped by PID (never by name).

PostgreSQL (throwaway cluster), Redis, an MLflow tracking server, a Ray head and S3 (Ceph RGW). Each manager waits
until its server answers, and raises with the tail of the server's log when it does not.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from mlops_assets.lib.local_processes import free_port, log_tail, pid_alive, stop_process_tree

VENV_BIN = Path(sys.executable).parent
POSTGRES_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class ServerStartError(RuntimeError):
    """A server did not start or answer; the message carries the tail of its log."""


def _wait_until(ready: Callable[[], bool], timeout_s: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        time.sleep(0.2)
    raise ServerStartError(f"{what} did not become ready in {timeout_s:.0f}s; log tail:\n{log_tail(log)}")


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.3):
            return True
    except OSError:
        return False


# --- PostgreSQL -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    pid: int

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its SQLAlchemy URL (psycopg2 driver, which NOTES.md says to name)."""
        import psycopg2

        # CREATE DATABASE cannot run in a transaction: autocommit, and no `with conn` (which opens one).
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname="postgres")
        try:
            conn.autocommit = True
            with conn.cursor() as cursor:
                cursor.execute(f'create database "{name}"')
        finally:
            conn.close()
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{name}"

    def query(self, dbname: str, sql: str) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, dbname=dbname)
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchall()
        finally:
            conn.close()


def _postgres_binary(name: str) -> str:
    for directory in POSTGRES_BIN_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise ServerStartError(f"{name} not found: install PostgreSQL (apt-get install -y postgresql)")
    return found


@contextmanager
def postgres_server(base_dir: Path) -> Iterator[PostgresServer]:
    """A throwaway cluster with trust authentication for the superuser ``postgres``."""
    base_dir.mkdir(parents=True, exist_ok=True)
    # initdb refuses to run as root, so the cluster runs as the `postgres` OS user in a directory it owns
    # (pytest's tmp dirs are private to root).
    as_root = os.geteuid() == 0
    cluster_dir = Path(tempfile.mkdtemp(prefix="mlops-pg-"))
    data, sockets, log = cluster_dir / "data", cluster_dir / "sock", cluster_dir / "server.log"
    sockets.mkdir()
    if as_root:
        shutil.chown(cluster_dir, "postgres")
        shutil.chown(sockets, "postgres")
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    port = free_port()
    started = time.perf_counter()
    subprocess.run(
        [*prefix, _postgres_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    pg_ctl = _postgres_binary("pg_ctl")
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {sockets} -c fsync=off"
    start = subprocess.run(
        [*prefix, pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"],
        capture_output=True,
        text=True,
    )
    if start.returncode != 0:
        raise ServerStartError(f"PostgreSQL did not start: {start.stderr}\n{log_tail(log)}")
    pid = int((data / "postmaster.pid").read_text().splitlines()[0])
    print(f"PostgreSQL on 127.0.0.1:{port} (pid {pid}) in {time.perf_counter() - started:.1f}s")
    try:
        yield PostgresServer(host="127.0.0.1", port=port, user="postgres", pid=pid)
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        if pid_alive(pid):
            stop_process_tree(pid)
        if log.exists():
            shutil.copy(log, base_dir / "postgres.log")
        shutil.rmtree(cluster_dir, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RedisServer:
    host: str
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    @property
    def connection_string(self) -> str:
        return f"{self.host}:{self.port}"


@contextmanager
def redis_server(base_dir: Path) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServerStartError("redis-server is not installed: apt-get install -y redis-server (scripts/test.sh does)")
    base_dir.mkdir(parents=True, exist_ok=True)
    port, pidfile, log = free_port(), base_dir / "redis.pid", base_dir / "redis.log"
    started = time.perf_counter()
    subprocess.run(
        [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no",
         "--daemonize", "yes", "--pidfile", str(pidfile), "--logfile", str(log), "--dir", str(base_dir)],
        check=True,
    )  # fmt: skip
    _wait_until(lambda: pidfile.exists() and _port_open(port), 15, "redis-server", log)
    pid = int(pidfile.read_text().strip())
    print(f"Redis on 127.0.0.1:{port} (pid {pid}) in {time.perf_counter() - started:.1f}s")
    try:
        yield RedisServer(host="127.0.0.1", port=port, pid=pid)
    finally:
        stop_process_tree(pid)


# --- MLflow tracking server -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MlflowServer:
    tracking_uri: str
    pid: int


@contextmanager
def mlflow_server(
    base_dir: Path, backend_store_uri: str, artifact_root: str, extra_env: dict[str, str] | None = None
) -> Iterator[MlflowServer]:
    """``mlflow server`` with artefacts proxied through it (``--serve-artifacts``), so clients need only the URI;
    ``extra_env`` reaches the server only (e.g. the S3 endpoint and keys of an ``s3://`` artefact root)."""
    import urllib.request

    base_dir.mkdir(parents=True, exist_ok=True)
    port, log = free_port(), base_dir / "mlflow.log"
    # Without this, the server starts seven job-execution workers (about 1.6 GB, NOTES.md).
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **(extra_env or {})}
    started = time.perf_counter()
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(VENV_BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
             "--backend-store-uri", backend_store_uri, "--artifacts-destination", artifact_root,
             "--serve-artifacts", "--workers", "1"],
            stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip

    def healthy() -> bool:
        if process.poll() is not None:
            raise ServerStartError(f"mlflow server exited with {process.returncode}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        _wait_until(healthy, 120, "mlflow server", log)
        print(f"MLflow server on 127.0.0.1:{port} (pid {process.pid}) in {time.perf_counter() - started:.1f}s")
        yield MlflowServer(tracking_uri=f"http://127.0.0.1:{port}", pid=process.pid)
    finally:
        stop_process_tree(process.pid)
        process.wait(timeout=10)


# --- Ray head ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RayHead:
    address: str  # the GCS address: a driver on this machine
    # Ray Client (what a pod or a container uses, as production's ray://…:10001); ``token`` authenticates it without
    # the token file, which exists only on this machine (RAY_AUTH_TOKEN instead of RAY_AUTH_TOKEN_PATH).
    client_address: str
    token: str
    pid: int
    # What a driver on this machine needs in its environment to connect: the cluster runs with token authentication.
    client_env: dict[str, str]


@contextmanager
def ray_head(base_dir: Path, num_cpus: int = 2) -> Iterator[RayHead]:
    """``ray start --head --block`` on loopback; stopped by PID with every process it started (never ``ray stop``,
    which kills every Ray on the machine)."""
    base_dir.mkdir(parents=True, exist_ok=True)
    # Ray's Unix socket paths must stay under ~107 characters: a short temp dir, not pytest's deep one.
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    port, client_port, log = free_port(), free_port(), base_dir / "ray.log"
    # Token authentication with our own token file: explicit on both sides, so neither the head nor a driver depends
    # on (or writes) ~/.ray/auth_token, which Ray otherwise creates for the first local cluster and then enforces.
    token_path = temp_dir / "auth_token"
    token_path.write_text(secrets.token_hex(32))
    token_path.chmod(0o600)
    client_env = {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN_PATH": str(token_path),
        # A driver on this machine keeps the loopback address (otherwise Ray rewrites 127.0.0.1 to the machine's).
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    }
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **client_env}
    started = time.perf_counter()
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(VENV_BIN / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={port}", f"--ray-client-server-port={client_port}", f"--num-cpus={num_cpus}", "--num-gpus=0",
             "--include-dashboard=false",
             "--disable-usage-stats", f"--temp-dir={temp_dir}"],
            stdout=handle, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip

    def ready() -> bool:
        if process.poll() is not None:
            raise ServerStartError(f"ray start exited with {process.returncode}:\n{log_tail(log)}")
        # The head is usable once the raylet has registered: its session directory holds the node's sockets.
        return _port_open(port) and any(temp_dir.glob("session_*/sockets/raylet*"))

    try:
        _wait_until(ready, 90, "Ray head", log)
        print(f"Ray head on 127.0.0.1:{port} (pid {process.pid}) in {time.perf_counter() - started:.1f}s")
        yield RayHead(
            address=f"127.0.0.1:{port}",
            client_address=f"ray://127.0.0.1:{client_port}",
            token=token_path.read_text(),
            pid=process.pid,
            client_env=client_env,
        )
    finally:
        stop_process_tree(process.pid, timeout_s=30)
        process.wait(timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)


# --- S3: Ceph RGW -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Server:
    """A real S3 API: Ceph's RADOS Gateway over a one-monitor, one-OSD (memstore) cluster."""

    endpoint_url: str
    access_key: str
    secret_key: str
    pids: tuple[int, ...]

    @property
    def client_env(self) -> dict[str, str]:
        """The standard AWS variables every S3 client here reads (boto3, s3fs, DuckDB's credential chain)."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def create_bucket(self, name: str) -> None:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        ).create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
        )
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


_CEPH_TOOLS = ("ceph-authtool", "monmaptool", "ceph-mon", "ceph-osd", "ceph", "radosgw", "radosgw-admin")


@contextmanager
def ceph_s3_server(base_dir: Path) -> Iterator[S3Server]:
    """One monitor, one memstore OSD and RGW, all on 127.0.0.1 under ``base_dir``; every daemon stopped by PID.

    cephx stays on (RGW hangs with ``auth none``): the keys are generated into a keyring first.
    """
    missing = [tool for tool in _CEPH_TOOLS if shutil.which(tool) is None]
    if missing:
        raise ServerStartError(
            f"{', '.join(missing)} not installed: apt-get install -y --no-install-recommends ceph-mon ceph-osd "
            "radosgw ceph-common (scripts/test.sh does)"
        )
    import uuid

    root = base_dir / "ceph"
    for sub in ("run", "log", "mon.a", "osd0", "rgw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    mon_port, rgw_port = free_port(), free_port()
    fsid = str(uuid.uuid4())
    conf = root / "ceph.conf"
    conf.write_text(
        f"""[global]
fsid = {fsid}
mon host = v2:127.0.0.1:{mon_port}
mon initial members = a
public network = 127.0.0.0/8
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd crush chooseleaf type = 0
mon allow pool size one = true
mon warn on pool no redundancy = false
auth allow insecure global id reclaim = false
run dir = {root}/run
admin socket = {root}/run/$cluster-$name.asok
log file = {root}/log/$cluster-$name.log
pid file = {root}/run/$name.pid
keyring = {root}/keyring
ms bind ipv6 = false
[mon]
mon data = {root}/mon.$id
mon data avail crit = 1
mon data avail warn = 2
[osd]
osd objectstore = memstore
memstore device bytes = 1073741824
osd data = {root}/osd$id
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {root}/rgw
"""
    )

    def run(*argv: str) -> str:
        done = subprocess.run(list(argv), cwd=root, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise ServerStartError(f"{' '.join(argv)} failed: {done.stderr[-2000:]}")
        return done.stdout

    keyring = str(root / "keyring")
    caps = {
        "mon.": ["--cap", "mon", "allow *"],
        "client.admin": ["--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"],
        "osd.0": ["--cap", "mon", "allow profile osd", "--cap", "osd", "allow *", "--cap", "mgr", "allow profile osd"],
        "client.rgw.a": ["--cap", "mon", "allow rw", "--cap", "osd", "allow rwx", "--cap", "mgr", "allow rw"],
    }
    for index, (name, cap) in enumerate(caps.items()):
        run("ceph-authtool", *(["--create-keyring"] if index == 0 else []), keyring, "--gen-key", "-n", name, *cap)
    c = ["-c", str(conf)]
    started = time.perf_counter()
    pid_files = {name: root / "run" / f"{name}.pid" for name in ("mon.a", "osd.0", "client.rgw.a")}
    try:
        run("monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{mon_port}]", "--fsid", fsid, str(root / "monmap"))
        run("ceph-mon", *c, "--mkfs", "-i", "a", "--monmap", str(root / "monmap"), "--keyring", keyring)
        run("ceph-mon", *c, "-i", "a")
        osd_uuid = str(uuid.uuid4())
        run("ceph", *c, "osd", "new", osd_uuid, "0")
        run("ceph-osd", *c, "-i", "0", "--mkfs", "--osd-uuid", osd_uuid)
        run("ceph-osd", *c, "-i", "0")
        log = root / "log" / "ceph-osd.0.log"
        _wait_until(lambda: " 1 up" in run("ceph", *c, "osd", "stat"), 60, "the Ceph OSD", log)
        run("radosgw", *c, "-n", "client.rgw.a")
        _wait_until(lambda: _port_open(rgw_port), 90, "Ceph RGW", root / "log" / "ceph-client.rgw.a.log")
        access_key, secret_key = secrets.token_hex(10), secrets.token_hex(20)
        run("radosgw-admin", *c, "user", "create", "--uid=mlops", "--display-name=mlops",
            f"--access-key={access_key}", f"--secret={secret_key}")  # fmt: skip
        pids = tuple(int(path.read_text().strip()) for path in pid_files.values())
        print(f"Ceph RGW on 127.0.0.1:{rgw_port} (pids {pids}) in {time.perf_counter() - started:.1f}s")
        yield S3Server(f"http://127.0.0.1:{rgw_port}", access_key, secret_key, pids)
    finally:
        for path in reversed(list(pid_files.values())):  # RGW first, the monitor last
            if path.exists():
                pid = int(path.read_text().strip())
                if pid_alive(pid):
                    stop_process_tree(pid)


# --- Docker: Debian's engine (deploy/docker-engine.sh) --------------------------------------------------------------

DEPLOY_DIR = Path(__file__).resolve().parent.parent / "deploy"
# The engine's data-root is kept between runs, so a warm run reuses the base image and the layer cache; a cold run
# debootstraps the base and installs every wheel (minutes on two shared cores).
ENGINE_DIR = Path(os.environ.get("MLOPS_TEST_DOCKER_DIR", Path(tempfile.gettempdir()) / "mlops-assets-docker"))
DEPLOY_SCRIPT_TIMEOUT_S = 900


@dataclass(frozen=True)
class Engine:
    docker_host: str
    pid: int
    base_seconds: float


def deploy_script(name: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``deploy/<name>`` and return what it printed; a failure shows the end of its stderr."""
    done = subprocess.run(
        ["bash", str(DEPLOY_DIR / name), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=DEPLOY_SCRIPT_TIMEOUT_S,
        cwd=DEPLOY_DIR.parent,
    )
    assert done.returncode == 0, f"deploy/{name} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done.stdout


@contextmanager
def docker_engine() -> Iterator[Engine]:
    """The engine of deploy/docker-engine.sh with the Debian base image built, stopped by its PID afterwards."""
    from mlops_assets.lib.bento_build import DEFAULT_BASE_IMAGE

    printed = deploy_script("docker-engine.sh", "start", str(ENGINE_DIR))
    docker_host = next(line.split("=", 1)[1] for line in printed.splitlines() if line.startswith("DOCKER_HOST="))
    pid = int((ENGINE_DIR / "dockerd.pid").read_text())
    try:
        started = time.monotonic()
        print(deploy_script("base-image.sh", DEFAULT_BASE_IMAGE, env={"DOCKER_HOST": docker_host}).strip())
        yield Engine(docker_host, pid, time.monotonic() - started)
    finally:
        deploy_script("docker-engine.sh", "stop", str(ENGINE_DIR))
        assert not pid_alive(pid), f"dockerd (PID {pid}) survived deploy/docker-engine.sh stop"
