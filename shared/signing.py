"""Who sent it: every message a Tessera component publishes carries a signature by its own Ed25519 key, and
every consumer verifies it before it acts (docs/architecture.md "Trust", docs/contracts.md "Who sent it").

The signature is the CloudEvents extension attribute `signature`: a compact JWS (alg `Ed25519`, RFC 9864;
header `kid`, the key's RFC 7638 thumbprint) whose claims name the producer (`iss`), bind the envelope (`id`,
`type`, `source`, `subject`, `time` exactly as sent, and `data_sha256`: SHA-256, base64url, of `data`
written as JSON with sorted keys, no whitespace, UTF-8) and expire (`iat`, `exp`). A command from the desk
also carries the signed-in worker (`actor`), which must equal `data.actor`.

Keys live in one folder (SIGNING_KEYS_DIR): `<component>.pem`, the component's own private key (only its own
in production), and `trusted.json`, the public keys every consumer accepts, each bound to one producer.
"""

import base64
import functools
import hashlib
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import OKPKey

from shared import producers

ALGORITHM = "Ed25519"
COMPONENTS = ("web", "referrals", "workflow", "allocation", "notifications", "documents", "scheduler", "clocks")
TRUSTED_FILE = "trusted.json"
DEVELOPMENT_MARKER = "DEVELOPMENT-KEYS"  # written by make_keys: only development tools sign with a key beside it
BOUND_ATTRIBUTES = ("id", "type", "source", "subject", "time")
CLOCK_LEEWAY_SECONDS = 60
# whatever a producer writes into `exp`, no signature is accepted for longer than this after it was made
MAX_LIFETIME_SECONDS = 900


class MissingKeys(RuntimeError):
    """A component started without the keys it signs and verifies with."""


class Unauthenticated(Exception):
    """A message whose producer or actor cannot be verified: it is refused, nothing else happens."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def issuer_of(component: str) -> str:
    return f"tessera/{component}"


def data_digest(data: Any) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


@dataclass(frozen=True)
class Signer:
    """One component's private key: signs what it publishes."""

    issuer: str
    key: OKPKey
    lifetime_seconds: int = 300

    @functools.cached_property
    def kid(self) -> str:
        """The key's thumbprint (RFC 7638), computed once: every message and read token names it."""
        return self.key.thumbprint()

    def signature(self, body: dict[str, Any], *, actor: Any = None, now: float | None = None) -> str:
        issued = int(now if now is not None else time.time())
        claims = {"iss": self.issuer, "iat": issued, "exp": issued + self.lifetime_seconds,
                  **{name: body.get(name) for name in BOUND_ATTRIBUTES},
                  "data_sha256": data_digest(body.get("data", {}))}
        if actor is not None:
            claims["actor"] = actor
        return self._compact(claims)

    def seal(self, claims: dict[str, Any]) -> str:
        """A signature over `claims` that never expires: evidence kept beside what it signs (an audit checkpoint),
        not a message to act on. Verifier.claims_of reads it back with the producer it proves."""
        return self._compact({"iss": self.issuer, **claims})

    def _compact(self, claims: dict[str, Any]) -> str:
        payload = json.dumps(claims, separators=(",", ":")).encode()
        return jws.serialize_compact({"alg": ALGORITHM, "kid": self.kid}, payload, self.key, algorithms=[ALGORITHM])

    def signed(self, value: bytes, *, with_actor: bool = False) -> bytes:
        """The structured-mode message with its `signature` attribute; with_actor: the desk's `data.actor`."""
        body = json.loads(value)
        actor = body.get("data", {}).get("actor") if with_actor else None
        signature = self.signature(body, actor=actor)
        if "signature" in body or not value.rstrip().endswith(b"}") or len(body) == 0:
            return json.dumps({**body, "signature": signature}, separators=(",", ":")).encode()
        # appended, not re-serialised: the bytes the outbox audited stay as they were
        return value.rstrip()[:-1] + b',"signature":' + json.dumps(signature).encode() + b"}"


@dataclass(frozen=True)
class Verified:
    producer: str
    actor: dict[str, Any] | None


@dataclass(frozen=True)
class TrustedKey:
    producer: str
    key: OKPKey


class Verifier:
    """The public keys a consumer trusts, each bound to one producer; several per producer during a rotation."""

    def __init__(self, trusted: dict[str, TrustedKey]) -> None:
        self._trusted = trusted

    def verify(self, body: dict[str, Any], topic: str, at: float) -> Verified:
        """The producer and actor the signature proves; Unauthenticated naming what failed.

        `at` is the record's broker timestamp (LogAppendTime on Apache Kafka), not this consumer's clock: a
        backlog read after an outage is as fresh as when it was written.
        """
        claims, producer = self.claims_of(body.get("signature"))
        actor = _checked_actor(body, claims, producer, topic)
        _check_binding(body, claims, producer)
        check_times(claims, at, noun="signature", accepted=(int, float),
                    too_early="signed after the message was written")
        message_type = str(body.get("type"))
        if not producers.may_write(producer, topic, message_type):
            raise Unauthenticated(f"{producer} may not send {message_type[:100]} on {topic}")
        return Verified(producer, actor)

    def claims_of(self, signature: Any) -> tuple[dict[str, Any], str]:
        """The claims of a compact JWS by a trusted key, and the producer the key is bound to."""
        if signature is None:
            raise Unauthenticated("not signed")
        if not isinstance(signature, str) or len(signature) > 10_000:
            raise Unauthenticated("signature: not a compact JWS")
        try:
            kid = jws.extract_compact(signature.encode()).headers().get("kid")
        except (JoseError, ValueError, TypeError):
            raise Unauthenticated("signature: not a compact JWS") from None
        trusted = self._trusted.get(kid) if isinstance(kid, str) else None
        if trusted is None:
            raise Unauthenticated("signed by a key nobody trusts")
        try:
            claims = json.loads(jws.deserialize_compact(signature, trusted.key, algorithms=[ALGORITHM]).payload)
        except (JoseError, ValueError, TypeError):
            raise Unauthenticated("bad signature") from None
        if not isinstance(claims, dict) or claims.get("iss") != trusted.producer:
            raise Unauthenticated(f"the key signs for {trusted.producer}, not for the producer named")
        return claims, trusted.producer


def _check_binding(body: dict[str, Any], claims: dict[str, Any], producer: str) -> None:
    if body.get("source") != producer:
        raise Unauthenticated(f"source differs from the signing producer {producer}")
    altered = [name for name in BOUND_ATTRIBUTES if claims.get(name) != body.get(name)]
    if claims.get("data_sha256") != data_digest(body.get("data", {})):
        altered.append("data")
    if altered:
        raise Unauthenticated(f"changed after signing: {', '.join(altered)}")


def check_times(claims: Mapping[str, Any], at: float, *, noun: str, accepted: type | tuple[type, ...],
                too_early: str) -> None:
    """`iat` and `exp` present (of the `accepted` number types), a life of at most MAX_LIFETIME_SECONDS, and `at`
    within [iat − leeway, exp + leeway]; Unauthenticated naming the `noun` (a signature, a read token) otherwise."""
    issued, expires = claims.get("iat"), claims.get("exp")
    if not all(isinstance(t, accepted) and not isinstance(t, bool) for t in (issued, expires)):
        raise Unauthenticated(f"{noun} without iat and exp")
    assert isinstance(issued, int | float) and isinstance(expires, int | float)
    if expires - issued > MAX_LIFETIME_SECONDS:
        raise Unauthenticated(f"{noun} lives longer than {MAX_LIFETIME_SECONDS} s")
    if at < issued - CLOCK_LEEWAY_SECONDS:
        raise Unauthenticated(too_early)
    if at > expires + CLOCK_LEEWAY_SECONDS:
        raise Unauthenticated(f"{noun} expired")


def _checked_actor(body: dict[str, Any], claims: dict[str, Any], producer: str, topic: str) -> dict[str, Any] | None:
    data = body.get("data")
    named = data.get("actor") if isinstance(data, dict) else None
    if "actor" not in claims:
        if producer == producers.DESK and topic in producers.COMMAND_TOPICS:
            raise Unauthenticated("a command from the desk without the signed-in worker")
        return None
    if claims["actor"] != named:
        raise Unauthenticated("data.actor differs from the signed actor")
    return claims["actor"]


# --- keys -----------------------------------------------------------------------------------------


def _folder(keys_dir: Path | None) -> Path:
    if keys_dir is None:
        raise MissingKeys("SIGNING_KEYS_DIR is not set: every component signs what it publishes and verifies what"
                          " it reads (`make run` makes development keys; deploy/runbooks/signing-keys.md)")
    return keys_dir


def load_signer(keys_dir: Path | None, component: str, lifetime_seconds: int = 300) -> Signer:
    path = _folder(keys_dir) / f"{component}.pem"
    if not path.is_file():
        raise MissingKeys(f"no signing key for {component} in SIGNING_KEYS_DIR ({component}.pem)")
    return Signer(issuer_of(component), OKPKey.import_key(path.read_bytes()), lifetime_seconds)


def load_verifier(keys_dir: Path | None) -> Verifier:
    path = _folder(keys_dir) / TRUSTED_FILE
    if not path.is_file():
        raise MissingKeys(f"no {TRUSTED_FILE} in SIGNING_KEYS_DIR: the public keys this component trusts")
    trusted = {}
    for entry in json.loads(path.read_text())["keys"]:
        key = OKPKey.import_key({k: v for k, v in entry.items() if k in ("kty", "crv", "x")})
        trusted[key.thumbprint()] = TrustedKey(entry["iss"], key)
    return Verifier(trusted)


def make_keys(keys_dir: Path, components: tuple[str, ...] = COMPONENTS, *, development: bool = True) -> None:
    """A private key per component (kept if there) and trusted.json naming every public key and its producer."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    entries = []
    for component in components:
        path = keys_dir / f"{component}.pem"
        if not path.exists():
            path.touch(0o600)
            path.write_bytes(OKPKey.generate_key("Ed25519").as_pem(private=True))
        key = OKPKey.import_key(path.read_bytes())
        entries.append({**key.as_dict(private=False), "kid": key.thumbprint(), "iss": issuer_of(component)})
    (keys_dir / TRUSTED_FILE).write_text(json.dumps({"keys": entries}, indent=2) + "\n")
    if development:
        (keys_dir / DEVELOPMENT_MARKER).write_text("Made by `make run` or the tests; never deploy these keys.\n")
