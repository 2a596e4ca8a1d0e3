"""Read endpoints of the notifications service: worker and team inboxes, a person's messages."""

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request

from services.notifications import store
from services.notifications.domain import InboxItem
from shared import bearer

router = APIRouter(tags=["inboxes"])
State = Literal["open", "completed", "read", "withdrawn"]
Kind = Literal["request", "notification", "task"]


def _pool(request: Request) -> asyncpg.Pool:
    return request.app.state.runtime.pool


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _link(item: InboxItem) -> str:
    """Where the desk opens the item: its step where it has one, else the person."""
    return f"/steps/{item.step_id}" if item.step_id else f"/people/{item.person_id}"


def _item(item: InboxItem, now: datetime) -> dict[str, Any]:
    # a task is overdue once its due time passes (no reminder timer: it shows so in the inbox)
    late = item.kind == "task" and item.is_open and item.due_at is not None and item.due_at < now
    return {
        "request_id": item.request_id,
        "kind": item.kind,
        "state": item.state,
        "to": {"kind": item.recipient_kind, "id": item.recipient_id},
        "person_id": item.person_id,
        "step_id": item.step_id,
        "step_type": item.step_type,
        "name": item.name,
        "note": item.note,
        "required": item.required,
        "sent_by": item.sent_by,
        "sent_at": _iso(item.sent_at),
        "due_at": _iso(item.due_at),
        "overdue": item.overdue or late,
        "reminded_at": _iso(item.reminded_at),
        "closed_at": _iso(item.closed_at),
        "closed_by": item.closed_by,
        "closed_reason": item.closed_reason,
        # tasks (issue #22 §1): what for, the rule it comes from, and where the desk opens it; `note` says why
        "task": {"code": item.task_code, "rule": item.rule, "link": _link(item)} if item.kind == "task" else None,
    }


@router.get("/workers/{worker_id}/inbox")
async def worker_inbox(worker_id: str, request: Request, state: State | None = None, kind: Kind | None = None,
                       limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Requests, notifications and tasks for the worker: open first, newest first (R-RQ1)."""
    now = datetime.now(UTC)
    return [_item(i, now) for i in await store.inbox_of(_pool(request), "worker", worker_id, state, limit, kind)]


@router.get("/teams/{team_id}/inbox")
async def team_inbox(team_id: str, request: Request, state: State | None = None, kind: Kind | None = None,
                     limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Requests, notifications and tasks for the team: open first, newest first (R-RQ1)."""
    now = datetime.now(UTC)
    return [_item(i, now) for i in await store.inbox_of(_pool(request), "team", team_id, state, limit, kind)]


@router.get("/people/{person_id}/inbox")
async def person_inbox(person_id: uuid.UUID, request: Request,
                       worker_id: str = Query(min_length=1, max_length=200),
                       team_ids: str = Query("", max_length=2000, description="comma-separated"),
                       limit: int = Query(1, ge=1, le=200)) -> list[dict[str, Any]]:
    """What was sent about the person to this worker or to their teams, in any state, newest first: the desk's
    access check asks this instead of reading whole inboxes (R-P5, issue #18 §5). A worker's token asks only for
    themselves (the read needs the person's grant, or the desk asking as itself)."""
    bearer.require_worker(bearer.reader_of(request), worker_id)
    teams = [t for t in team_ids.split(",") if t]
    for team in teams:
        bearer.require_team(bearer.reader_of(request), team)
    now = datetime.now(UTC)
    return [_item(i, now) for i in await store.inbox_items_about(_pool(request), str(person_id), worker_id, teams,
                                                                 limit)]


@router.get("/people/{person_id}/messages")
async def person_messages(person_id: uuid.UUID, request: Request,
                          limit: int = Query(200, ge=1, le=1000)) -> list[dict[str, Any]]:
    """Delivery records of the messages about a person, to them, their representative or their referrer (R-T4):
    who took each (provider) and when, when it was delivered, and the preferred channel not used and why; no
    addresses."""
    return [
        {
            "message_id": str(m.message_id), "recipient": m.recipient, "person_id": m.person_id, "team_id": m.team_id,
            "reason": m.reason, "template": m.template, "channel": m.channel, "status": m.status,
            "attempts": m.attempts, "error_code": m.error_code, "requested_at": _iso(m.requested_at),
            "updated_at": _iso(m.updated_at), "provider": m.provider, "fallback_from": m.fallback_from,
            "fallback_reason": m.fallback_reason, "task_id": m.task_id, "delivered_at": _iso(m.delivered_at),
        }
        for m in await store.messages_of(_pool(request), str(person_id), limit)
    ]
