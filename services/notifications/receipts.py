"""GOV.UK Notify's delivery receipts (issue #22 §8): Notify calls this service back with what became of each
email, text message and letter it took. Registered in Notify as the service's delivery-status callback, with the
bearer token of NOTIFY_CALLBACK_TOKEN; Notify signs nothing else, so that token is the whole proof of who calls.
"""

import hmac
import uuid
from datetime import UTC, datetime
from typing import Literal

from fastapi import APIRouter, Header, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from services.notifications import handlers

router = APIRouter(tags=["notify"])
# Notify's statuses: `delivered`, a final failure (permanent, temporary, technical…), or one on the way (a
# letter's receipts say it was accepted or received for printing; a letter that comes back is a returned-letter
# callback, not one of these)
DELIVERED = "delivered"
UNDER_WAY = ("created", "sending", "pending", "sent", "accepted", "received", "pending-virus-check")


class Receipt(BaseModel):
    """What of Notify's receipt is read: its notification id and status. The rest (`to` among it, an address) is
    neither read nor kept."""

    model_config = ConfigDict(extra="ignore")
    id: uuid.UUID
    status: Literal["delivered", "permanent-failure", "temporary-failure", "technical-failure", "validation-failed",
                    "virus-scan-failed", "cancelled", "created", "sending", "pending", "sent", "accepted",
                    "received", "pending-virus-check"]
    notification_type: Literal["email", "sms", "letter"]


@router.post("/notify/receipts")
async def notify_receipt(receipt: Receipt, request: Request,
                         authorization: str | None = Header(None)) -> dict[str, str]:
    """Notify's delivery receipt of one message: 200 with what was made of it (`delivered`, `failed`, `unchanged`
    for a repeat or a status on the way, `unknown` for a message this service did not send). Notify retries on
    anything but a 2xx, so a receipt for an unknown message is answered 200 too."""
    _check_token(request, authorization)
    if receipt.status in UNDER_WAY:
        return {"outcome": "unchanged"}
    outcome = await handlers.take_receipt(request.app.state.runtime.pool, str(receipt.id),
                                          receipt.status == DELIVERED, receipt.status, datetime.now(UTC))
    return {"outcome": outcome}


def _check_token(request: Request, authorization: str | None) -> None:
    expected = request.app.state.notify_callback_token
    if expected is None:
        raise HTTPException(404, "delivery receipts are not set up (NOTIFY_CALLBACK_TOKEN)")
    given = authorization.removeprefix("Bearer ") if authorization and authorization.startswith("Bearer ") else ""
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise HTTPException(401, "not Notify's callback token", headers={"WWW-Authenticate": "Bearer"})
