"""`python -m tessera sign`: sign one envelope as a component would, with development keys only.

For trying the system by hand (docs/contracts.md "Who sent it"): the envelope is read as JSON on stdin and printed
signed, with `source` (and for the desk `data.actor`) set to match. Keys made by `make run` carry a marker;
without it the tool refuses, so it can never sign with a production key.
"""

import json
from pathlib import Path
from typing import Any

from shared import signing


class NotDevelopment(Exception):
    """No development keys where the tool looked."""


def sign_envelope(text: str, keys_dir: Path, component: str, actor: dict[str, Any] | None) -> str:
    if not (keys_dir / signing.DEVELOPMENT_MARKER).is_file():
        raise NotDevelopment(f"no development keys in {keys_dir} (`make run` makes them under .run/keys); this tool"
                             " never signs with production keys")
    body = json.loads(text)
    if not isinstance(body, dict) or not isinstance(body.get("data", {}), dict):
        raise ValueError("stdin must hold one CloudEvent: a JSON object whose data is an object")
    body.pop("signature", None)
    body["source"] = signing.issuer_of(component)
    if actor is not None:
        body["data"] = {**body.get("data", {}), "actor": actor}
    signer = signing.load_signer(keys_dir, component)
    return signer.signed(json.dumps(body).encode(), with_actor=actor is not None).decode()


def actor_of(worker: str | None, roles: str, teams: str) -> dict[str, Any] | None:
    if worker is None:
        return None
    return {"worker_id": worker, "roles": [r for r in roles.split(",") if r],
            "team_ids": [t for t in teams.split(",") if t]}
