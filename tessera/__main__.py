"""`python -m tessera run` starts the system; `send-referral FILE` exercises it; `sign` signs a message and
`read-token` makes a bearer token for the HTTP reads, by hand (development keys only)."""

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared import signing
from tessera import client, launcher, signer


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
    sign = commands.add_parser("sign", help="sign one envelope (stdin) as the desk or a service: development keys only")
    sign.add_argument("--as", dest="component", required=True, choices=signing.COMPONENTS)
    sign.add_argument("--worker", help="the desk's signed-in worker (data.actor.worker_id); with --as web")
    sign.add_argument("--roles", default="", help="comma-separated")
    sign.add_argument("--teams", default="", help="comma-separated")
    sign.add_argument("--keys-dir", type=Path, default=Path(os.environ.get("SIGNING_KEYS_DIR", ".run/keys")))
    token = commands.add_parser("read-token", help="a bearer token for the services' reads: development keys only")
    token.add_argument("--as", dest="component", default="web", choices=signing.COMPONENTS)
    token.add_argument("--worker", help="the worker reading (with --as web); without it, the component itself")
    token.add_argument("--roles", default="", help="comma-separated")
    token.add_argument("--teams", default="", help="comma-separated")
    token.add_argument("--person", help="a person the worker may open (as the desk grants after its access check)")
    token.add_argument("--lifetime", type=int, default=300, help="seconds (at most 900)")
    token.add_argument("--keys-dir", type=Path, default=Path(os.environ.get("SIGNING_KEYS_DIR", ".run/keys")))
    keys = commands.add_parser("keys", help="make a private key per component and trusted.json in a folder")
    keys.add_argument("folder", type=Path)
    keys.add_argument("--production", action="store_true", help="without the development marker `sign` needs")
    args = parser.parse_args(argv)
    if args.command == "keys":
        signing.make_keys(args.folder, development=not args.production)
        print(f"keys in {args.folder}: {', '.join(signing.COMPONENTS)} and {signing.TRUSTED_FILE}")
        return 0
    if args.command == "sign":
        return _sign(args)
    if args.command == "read-token":
        return _read_token(args)
    if args.command == "run":
        return launcher.run(args.run_dir, external=args.external, broker_port=args.broker_port,
                            port_base=args.http_port_base)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    return asyncio.run(client.send_referral(args.file, bootstrap, source=args.source,
                                            keep_id=args.keep_id, timeout=args.timeout))


def _sign(args: argparse.Namespace) -> int:
    if args.component == "web" and args.worker is None:
        print("tessera sign: --as web needs --worker (the signed-in worker is the actor of every desk command)",
              file=sys.stderr)
        return 2
    try:
        print(signer.sign_envelope(sys.stdin.read(), args.keys_dir, args.component,
                                   signer.actor_of(args.worker, args.roles, args.teams)))
    except (signer.NotDevelopment, ValueError) as refused:
        print(f"tessera sign: {refused}", file=sys.stderr)
        return 2
    return 0


def _read_token(args: argparse.Namespace) -> int:
    try:
        print(signer.read_token(args.keys_dir, args.component, signer.actor_of(args.worker, args.roles, args.teams),
                                args.person, args.lifetime))
    except (signer.NotDevelopment, ValueError) as refused:
        print(f"tessera read-token: {refused}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
