"""What signing and verifying cost per message, in process: `python -m bench.signing [--messages N]`.

A desk command of typical size is signed as the desk and verified as a consumer would, beside the JSON decode
and encode every consumer already does of the same message.
"""

import argparse
import json
import tempfile
import time
import uuid
from pathlib import Path

from shared import signing, topics
from shared.envelope import new_message

ACTOR = {"worker_id": "sw-1", "roles": ["social_worker"], "team_ids": ["adult-front-door"]}


def per_message_us(messages: int) -> tuple[float, float]:
    """(sign + verify, JSON decode + encode) in microseconds per message."""
    keys = Path(tempfile.mkdtemp(prefix="tessera-bench-keys-")) / "keys"
    signing.make_keys(keys, ("web",))
    signer, verifier = signing.load_signer(keys, "web"), signing.load_verifier(keys)
    value = new_message("step.save", signing.issuer_of("web"), {
        "actor": ACTOR, "step_id": str(uuid.uuid4()), "expected_version": 3,
        "values": {f"field_{n}": "a value a worker typed" * 3 for n in range(20)}}).to_bytes()
    began = time.perf_counter()
    for _ in range(messages):
        signed = signer.signed(value, with_actor=True)
        verifier.verify(json.loads(signed), topics.WORKFLOW_COMMANDS, time.time())
    signing_us = (time.perf_counter() - began) / messages * 1e6
    began = time.perf_counter()
    for _ in range(messages):
        json.dumps(json.loads(value))
    return signing_us, (time.perf_counter() - began) / messages * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.signing", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    signed, plain = per_message_us(args.messages)
    print(f"sign + verify: {signed:,.0f} µs per message; JSON decode + encode of the same: {plain:,.0f} µs")


if __name__ == "__main__":
    main()
