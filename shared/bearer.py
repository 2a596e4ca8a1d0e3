"""Who reads: every read endpoint of every service needs `Authorization: Bearer <token>` (docs/architecture.md
"Trust", docs/contracts.md "Reading a service").

A token is a compact JWS signed with the reading component's own key (the same keys that sign messages), with
audience `tessera/read` and a short life. A service reads as itself: it may read any record, as it does to do its
job. The desk reads on behalf of the signed-in worker: its token carries the worker (`actor`) and, once the desk
has found why the worker may open a person's record (a relationship, their work, a recorded break-glass reason),
a grant for that one person. A worker's token reads only their own work, their own teams' work and the people it
holds a grant for; managers above teams read any. Probes and /metrics stay open.
"""

import contextlib
import contextvars
import functools
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fastapi import HTTPException, Request
from joserfc import jws

from shared.actor import MANAGER_ROLES, above_teams
from shared.signing import ALGORITHM, Signer, Unauthenticated, Verifier, check_times

AUDIENCE = "tessera/read"
LIFETIME_SECONDS = 120
BEARER = "Bearer "
WORKER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")


@dataclass(frozen=True)
class Grant:
    """Why a worker may open one person's record, as the desk found it."""

    person_id: str
    grounds: str  # "relationship" or "recorded reason"


@dataclass(frozen=True)
class Reader:
    """Who a verified token says is reading."""

    producer: str
    actor: Mapping[str, Any] | None = None
    grant: Grant | None = None

    @property
    def is_service(self) -> bool:
        return self.actor is None

    @property
    def worker_id(self) -> str:
        return str(self.actor["worker_id"]) if self.actor else ""

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(self.actor.get("roles", ())) if self.actor else frozenset()

    @property
    def team_ids(self) -> frozenset[str]:
        return frozenset(self.actor.get("team_ids", ())) if self.actor else frozenset()


def mint(signer: Signer, *, actor: Mapping[str, Any] | None = None, grant: Grant | None = None,
         lifetime_seconds: int = LIFETIME_SECONDS, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {"iss": signer.issuer, "aud": AUDIENCE, "iat": issued, "exp": issued + lifetime_seconds}
    if actor is not None:
        claims["actor"] = dict(actor)
    if grant is not None:
        claims["person"] = {"id": grant.person_id, "grounds": grant.grounds}
    payload = json.dumps(claims, separators=(",", ":")).encode()
    return jws.serialize_compact({"alg": ALGORITHM, "kid": signer.kid}, payload, signer.key, algorithms=[ALGORITHM])


def verify(verifier: Verifier, token: str, now: float | None = None) -> Reader:
    """The reader a token proves; Unauthenticated naming what failed."""
    claims, producer = _signed_by(verifier, token)
    if claims.get("aud") != AUDIENCE:
        raise Unauthenticated(f"not a read token (audience is not {AUDIENCE})")
    # `mint` writes whole seconds: a token with other times was not made by a Tessera component
    check_times(claims, time.time() if now is None else now, noun="token", accepted=int,
                too_early="token issued in the future")
    actor = claims.get("actor")
    if actor is not None and not _is_actor(actor):
        raise Unauthenticated("actor: not a worker with roles and teams")
    return Reader(producer, actor, _grant_of(claims.get("person")))


@functools.lru_cache(maxsize=1024)
def _signed_by(verifier: Verifier, token: str) -> tuple[Mapping[str, Any], str]:
    """The claims of a token whose signature checked out, and its producer. A reader sends the same token again
    for up to REUSE_SECONDS (a person page's eight reads or more), so its signature is checked once (0.3-0.5 ms of
    the answering service's CPU a read): a verifier's keys are loaded once for the process's life, so a signature
    that held holds. What changes with time (expiry) is checked on every use, in `verify`; a refusal is never
    kept (lru_cache keeps no exception)."""
    claims, producer = verifier.claims_of(token)
    return MappingProxyType(claims), producer


def _is_actor(actor: Any) -> bool:
    return (isinstance(actor, dict) and isinstance(actor.get("worker_id"), str)
            and WORKER_ID.match(actor["worker_id"]) is not None
            and all(isinstance(actor.get(k), list) and all(isinstance(v, str) for v in actor[k])
                    for k in ("roles", "team_ids")))


def _grant_of(person: Any) -> Grant | None:
    if person is None:
        return None
    if not (isinstance(person, dict) and isinstance(person.get("id"), str) and isinstance(person.get("grounds"), str)):
        raise Unauthenticated("person: not a grant for one person")
    return Grant(person["id"], person["grounds"])


# --- the services' side -------------------------------------------------------------------------------


def reader_of(request: Request) -> Reader:
    reader = getattr(request.state, "reader", None)
    assert isinstance(reader, Reader), "the read routes are mounted with `require_reader`"
    return reader


def require_reader(request: Request) -> None:
    """A FastAPI dependency of every read router: 401 without a valid token, 403 outside the worker's scope."""
    header = request.headers.get("authorization", "")
    if not header.startswith(BEARER):
        raise _unauthorised("a bearer token is required (Authorization: Bearer …)")
    try:
        reader = verify(request.app.state.runtime.verifier, header.removeprefix(BEARER).strip())
    except Unauthenticated as exc:
        raise _unauthorised(f"bearer token refused: {exc.reason}") from None
    request.state.reader = reader
    params = request.path_params
    if "team_id" in params:
        require_team(reader, str(params["team_id"]))
    if "worker_id" in params:
        require_worker(reader, str(params["worker_id"]))
    if "person_id" in params:
        require_person(reader, str(params["person_id"]))


def may_read_team(reader: Reader, team_id: str) -> bool:
    return reader.is_service or team_id in reader.team_ids or above_teams(reader.roles)


def require_team(reader: Reader, team_id: str) -> None:
    if may_read_team(reader, team_id):
        return
    raise HTTPException(403, f"worker {reader.worker_id} is not a member of team {team_id}")


def require_worker(reader: Reader, worker_id: str) -> None:
    if reader.is_service or worker_id == reader.worker_id or reader.roles & MANAGER_ROLES:
        return
    raise HTTPException(403, f"worker {reader.worker_id} may read only their own work")


def require_person(reader: Reader, person_id: str) -> None:
    """A worker reads a person's record only with the desk's grant for that person (or from above teams)."""
    if reader.is_service or above_teams(reader.roles):
        return
    if reader.grant is not None and reader.grant.person_id == person_id:
        return
    raise HTTPException(403, f"worker {reader.worker_id} has no grant for person {person_id}: open the record in"
                             " the desk, which checks the relationship or records a reason")


def require_person_of(request: Request, person_id: object) -> None:
    """For a read keyed by something else (a step, a document): the person it belongs to, once loaded."""
    require_person(reader_of(request), str(person_id))


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer realm="tessera"'})


# --- the readers' side ----------------------------------------------------------------------------------

_acting: contextvars.ContextVar[tuple[Mapping[str, Any] | None, Grant | None]] = contextvars.ContextVar(
    "tessera_reading_as", default=(None, None))


@contextlib.contextmanager
def reading_as(actor: Mapping[str, Any] | None, grant: Grant | None = None) -> Iterator[None]:
    """Reads made inside carry `actor` (and the person grant); the desk sets it per request."""
    token = _acting.set((actor, grant))
    try:
        yield
    finally:
        _acting.reset(token)


_own_signer: Signer | None = None


def sign_reads_with(signer: Signer) -> None:
    """This process's key for its reads of other services: set once its keys are loaded."""
    global _own_signer
    _own_signer = signer


def act_for(actor: Mapping[str, Any]) -> None:
    """From here on in this request, reads carry the signed-in worker (and no person yet)."""
    _acting.set((actor, None))


def grant(person_id: str, grounds: str) -> None:
    """From here on in this request, the worker's reads carry a grant for one person: the desk found why."""
    actor, _ = _acting.get()
    if actor is not None:
        _acting.set((actor, Grant(person_id, grounds)))


def as_component() -> contextlib.AbstractContextManager[None]:
    """Reads inside are the component's own: the desk's access check itself, names for a list of work."""
    return reading_as(None)


REUSE_SECONDS = 30  # a reused token still has at least 90 of its 120 seconds to live


class Tokens:
    """The Authorization header of each read, as this component, on behalf of the current worker if any (or of
    `actor` always, for a client that reads as one worker). A token minted for the same reader and grant in the
    last REUSE_SECONDS is sent again: the same claims, still valid, and one page's reads (eleven on a person page)
    no longer mint one each (issue #18 §5)."""

    def __init__(self, signer: Callable[[], Signer | None] = lambda: _own_signer, *,
                 actor: Mapping[str, Any] | None = None, grant: Grant | None = None) -> None:
        self._signer = signer
        self._fixed = (actor, grant) if actor is not None else None
        self._minted: dict[tuple[str, str, str, Grant | None], tuple[float, str]] = {}

    def authorization(self) -> str | None:
        """`Bearer <token>`, or None where no signer is configured."""
        signer = self._signer()
        if signer is None:
            return None
        actor, grant = self._fixed or _acting.get()
        return BEARER + self._token(signer, actor, grant)

    def _token(self, signer: Signer, actor: Mapping[str, Any] | None, grant: Grant | None) -> str:
        key = (signer.issuer, signer.kid, "" if actor is None else json.dumps(dict(actor), sort_keys=True), grant)
        now = time.time()
        minted = self._minted.get(key)
        if minted is None or not 0 <= now - minted[0] < REUSE_SECONDS:
            if len(self._minted) >= 1000:  # workers come and go: what they were minted is not kept
                self._minted.clear()
            minted = self._minted[key] = (now, mint(signer, actor=actor, grant=grant, now=now))
        return minted[1]
