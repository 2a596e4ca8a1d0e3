"""`python -m tessera sign` and `read-token`: sign one envelope as a component would, or make a bearer token for
the services' reads, with development keys only.

For trying the system by hand (docs/contracts.md "Who sent it"): the envelope is read as JSON on stdin and printed
signed, with `source` (and for the desk `data.actor`) set to match. Keys made by `make run` carry a marker;
without it the tool refuses, so it can never sign with a production key.
"""

import json
from pathlib import Path
from typing import Any

from shared import bearer, signing


class NotDevelopment(Exception):
    """No development keys where the tool looked."""


def _development_signer(keys_dir: Path, component: str) -> signing.Signer:
    if not (keys_dir / signing.DEVELOPMENT_MARKER).is_file():
        raise NotDevelopment(f"no development keys in {keys_dir} (`make run` makes them under .run/keys); this tool"
                             " never signs with production keys")
    return signing.load_signer(keys_dir, component)


def sign_envelope(text: str, keys_dir: Path, component: str, actor: dict[str, Any] | None) -> str:
    signer = _development_signer(keys_dir, component)
    body = json.loads(text)
    if not isinstance(body, dict) or not isinstance(body.get("data", {}), dict):
        raise ValueError("stdin must hold one CloudEvent: a JSON object whose data is an object")
    body.pop("signature", None)
    body["source"] = signing.issuer_of(component)
    if actor is not None:
        body["data"] = {**body.get("data", {}), "actor": actor}
    return signer.signed(json.dumps(body).encode(), with_actor=actor is not None).decode()


def actor_of(worker: str | None, roles: str, teams: str) -> dict[str, Any] | None:
    if worker is None:
        return None
    return {"worker_id": worker, "roles": [r for r in roles.split(",") if r],
            "team_ids": [t for t in teams.split(",") if t]}


def read_token(keys_dir: Path, component: str, actor: dict[str, Any] | None, person_id: str | None,
               lifetime_seconds: int) -> str:
    if not 1 <= lifetime_seconds <= signing.MAX_LIFETIME_SECONDS:
        raise ValueError(f"--lifetime must be 1 to {signing.MAX_LIFETIME_SECONDS} seconds")
    if person_id is not None and actor is None:
        raise ValueError("--person grants a worker access to one person: give --worker too")
    grant = bearer.Grant(person_id, "recorded reason") if person_id else None
    return bearer.mint(_development_signer(keys_dir, component), actor=actor, grant=grant,
                       lifetime_seconds=lifetime_seconds)
