"""Runs the whole system: embedded broker and database, then every service under supervisord."""

import asyncio
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from shared import embedded, signing
from shared.broker import ensure_topics
from shared.settings import HTTP_PORTS, Settings
from tessera import mail_catcher

ROOT = Path(__file__).resolve().parent.parent
# by port: the web front end (8080) first, then the services from 8081; each at port_base + its index
SERVICES = tuple(sorted(HTTP_PORTS, key=HTTP_PORTS.__getitem__))
PORT_BASE = HTTP_PORTS[SERVICES[0]]


@dataclass(frozen=True)
class Layout:
    """Where one run keeps its config, logs and embedded database."""

    run_dir: Path

    @property
    def logs(self) -> Path:
        return self.run_dir / "logs"

    @property
    def pgdata(self) -> Path:
        return self.run_dir / "pgdata"

    @property
    def supervisor_conf(self) -> Path:
        return self.run_dir / "supervisord.conf"


def supervisor_config(layout: Layout, env: dict[str, str], port_base: int) -> str:
    """One program per service; supervisord restarts a dead one, backing off on crash loops."""
    lines = [
        "[supervisord]", "nodaemon=true", f"logfile={layout.logs / 'supervisord.log'}",
        f"pidfile={layout.run_dir / 'supervisord.pid'}", "loglevel=info", "",
        "[unix_http_server]", f"file={layout.run_dir / 'supervisor.sock'}", "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
        "[supervisorctl]", f"serverurl=unix://{layout.run_dir / 'supervisor.sock'}", "",
    ]
    urls = {f"{name.upper()}_URL": f"http://127.0.0.1:{port_base + i}" for i, name in enumerate(SERVICES)}
    for offset, name in enumerate(SERVICES):
        # make run is development: demo accounts, cookies over plain HTTP (production is the default elsewhere);
        # one replica per service reads every partition itself, so a restart waits for no group's join
        program_env = {"TESSERA_ENVIRONMENT": "development", "KAFKA_ASSIGNMENT": "all", **env, **urls,
                       "HTTP_PORT": str(port_base + offset)}
        environment = ",".join(f'{k}="{v.replace("%", "%%")}"' for k, v in program_env.items())
        lines += [
            f"[program:{name}]",
            f"command={sys.executable} -m services.{name}",
            f"directory={ROOT}",
            "autorestart=true", "startsecs=3", "startretries=20",
            "stopsignal=TERM", "stopwaitsecs=15", "stopasgroup=true", "killasgroup=true",
            f"stdout_logfile={layout.logs / f'{name}.log'}", "stdout_logfile_maxbytes=20MB",
            "redirect_stderr=true", f"environment={environment}", "",
        ]
    return "\n".join(lines)


def start_infrastructure(layout: Layout, external: bool, broker_port: int) -> tuple[dict[str, str], list]:
    """Start the embedded broker and database unless told to use existing ones."""
    stoppers: list = []
    if external:
        env = {k: os.environ[k] for k in ("KAFKA_BOOTSTRAP_SERVERS", "DATABASE_URL")}
    else:
        broker = embedded.start_broker(broker_port, layout.logs / "broker.log")
        stoppers.append(lambda: embedded.stop_process(broker))
        database = embedded.Database(layout.pgdata)
        stoppers.append(database.stop)
        env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{broker_port}", "DATABASE_URL": database.dsn}
    env["SIGNING_KEYS_DIR"] = os.environ.get("SIGNING_KEYS_DIR") or str(development_keys(layout))
    for key in ("KAFKA_ENABLE_IDEMPOTENCE", "KAFKA_ACKS", "TOPIC_PARTITIONS", "LOG_LEVEL"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env, stoppers


def development_keys(layout: Layout) -> Path:
    """Each component's signing key and the trusted public keys, made once under <run-dir>/keys."""
    folder = layout.run_dir / "keys"
    signing.make_keys(folder)
    return folder


def start_mail_catcher(layout: Layout, env: dict[str, str]) -> list:
    """A local SMTP server so a user sees the mail the system sends: each mail a .eml file in <run-dir>/mail.

    Skipped when SMTP_HOST names a real server; the services are pointed at it through SMTP_HOST/SMTP_PORT.
    """
    if "SMTP_HOST" in os.environ:
        env.update({k: os.environ[k] for k in ("SMTP_HOST", "SMTP_PORT") if k in os.environ})
        return []
    mail_dir = layout.run_dir / "mail"
    port = int(os.environ.get("SMTP_PORT", "1025"))
    try:
        controller = mail_catcher.start(mail_dir, port)
    except (OSError, RuntimeError) as exc:
        print(f"SMTP catcher not started on 127.0.0.1:{port} ({type(exc).__name__}): email will fail", flush=True)
        return []
    env.update({"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port)})
    print(f"Mail sent by the system: {mail_dir}/*.eml (SMTP catcher on 127.0.0.1:{port})", flush=True)
    return [controller.stop]


def run(run_dir: Path, *, external: bool = False, broker_port: int = 9092, port_base: int = PORT_BASE) -> int:
    layout = Layout(run_dir.resolve())
    layout.logs.mkdir(parents=True, exist_ok=True)
    env, stoppers = start_infrastructure(layout, external, broker_port)
    try:
        stoppers += start_mail_catcher(layout, env)
        settings = Settings(kafka_bootstrap_servers=env["KAFKA_BOOTSTRAP_SERVERS"],
                            topic_partitions=int(env.get("TOPIC_PARTITIONS", 4)))
        asyncio.run(ensure_topics(settings))
        layout.supervisor_conf.write_text(supervisor_config(layout, env, port_base))
        _banner(layout, env, port_base)
        return _supervise(layout)
    finally:
        for stop in reversed(stoppers):
            stop()


def _supervise(layout: Layout) -> int:
    supervisord = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(layout.supervisor_conf)],
        start_new_session=True,
    )

    def forward(signum: int, _frame: object) -> None:
        if supervisord.poll() is None:
            supervisord.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return supervisord.wait()


def _banner(layout: Layout, env: dict[str, str], port_base: int) -> None:
    print("Tessera is starting: broker", env["KAFKA_BOOTSTRAP_SERVERS"], flush=True)
    for offset, name in enumerate(SERVICES):
        print(f"  {name:<14} http://127.0.0.1:{port_base + offset}/readyz", flush=True)
    print(f"Logs: {layout.logs}/<service>.log   Stop: Ctrl-C", flush=True)
    print("See it work: .venv/bin/python -m tessera send-referral samples/wellbeing.json", flush=True)
    print(f"Tessera desk: http://127.0.0.1:{port_base + SERVICES.index('web')}/ (demo accounts: README.md)", flush=True)
