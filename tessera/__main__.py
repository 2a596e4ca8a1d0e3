"""`python -m tessera run` starts the system; `python -m tessera send-referral FILE` exercises it."""

import argparse
import asyncio
import os
import sys
from pathlib import Path

from tessera import client, launcher


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tessera")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start the broker, database and every service")
    run.add_argument("--run-dir", type=Path, default=Path(".run"))
    run.add_argument("--external", action="store_true",
                     help="use KAFKA_BOOTSTRAP_SERVERS and DATABASE_URL instead of the embedded ones")
    run.add_argument("--broker-port", type=int, default=9092)
    run.add_argument("--http-port-base", type=int, default=launcher.PORT_BASE)
    send = commands.add_parser("send-referral", help="publish a referral and print what happened")
    send.add_argument("file", type=Path)
    send.add_argument("--source", default="tessera-cli")
    send.add_argument("--keep-id", action="store_true", help="send the file's referral_id unchanged")
    send.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args(argv)
    if args.command == "run":
        return launcher.run(args.run_dir, external=args.external, broker_port=args.broker_port,
                            port_base=args.http_port_base)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    return asyncio.run(client.send_referral(args.file, bootstrap, source=args.source,
                                            keep_id=args.keep_id, timeout=args.timeout))


if __name__ == "__main__":
    sys.exit(main())
