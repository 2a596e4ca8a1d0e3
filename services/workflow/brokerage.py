"""Purchase orders out and brokerage events in (R-F1, R-F2): the I/O half of purchasing.py.

Each order is a `po_requests` row with a unique `source_key`, written in the transaction that
decides it together with its outbox message: a redelivered command, timer or brokerage event
finds the row and publishes nothing again.
"""

import logging
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from faststream.kafka import KafkaRouter

from services.workflow import purchasing, store
from services.workflow.domain import Decision, Step
from services.workflow.pack import PackRegistry
from shared import inbox, metrics, outbox, topics
from shared.broker import Context, KafkaMessage, subscriber
from shared.calendar import london_date
from shared.envelope import Envelope, decode_either_mode, parse
from shared.events.brokerage import ProviderConfirmed, ProviderOffered
from shared.events.purchasing import PurchaseOrderAmended, PurchaseOrderRequested
from shared.events.scheduler import TimerCancel, TimerDue, TimerSet
from shared.events.workflow import CaseClosed

EMIT = outbox.Emitter("tessera/workflow")
GROUP = "workflow"
OWNER = "workflow"  # the owner of the lack-of-provision timers, as the workflow's other timers
log = logging.getLogger(__name__)
router = KafkaRouter()
queries = APIRouter(tags=["purchasing"])


# --- orders from next actions (R-F1) ---------------------------------------------------------------


async def issue_orders(
    conn: asyncpg.Connection, packs: PackRegistry, decision: Decision, cause: Envelope, actor: str,
) -> list[outbox.Outgoing]:
    """R-F1: the orders the decided step's sent purchasing next actions ask for, each once; R-F7: an order for
    a package the person has changes (or ends) it instead, and a closed case ends every live order."""
    now = datetime.now(UTC)
    messages: list[outbox.Outgoing] = []
    for closed in (e for e in decision.events if isinstance(e, CaseClosed)):
        messages += await _end_case(conn, closed.person_id, cause, now)
    step = decision.step
    if step is not None and step.state == "cancelled":
        return messages + await _end_cancelled(conn, step, cause, now)
    if step is None or not step.next_actions:
        return messages
    defn = packs.step(step.step_type, step.pack_version)
    if not any(a.purchase_order is not None for a in defn.next_actions):
        return messages
    sent = [purchasing.SentAction(a.next_action_id, a.action, a.reason, a.note, a.assignee_kind, a.assignee_id,
                                  sent=a.created_step_id is not None) for a in step.next_actions]
    orders = purchasing.orders_of_step(defn, step.step_id, step.person_id, step.state, step.values, sent,
                                       requested_by=actor)
    for order in orders:
        messages += await _place(conn, order, cause, now)
    return messages


async def _place(
    conn: asyncpg.Connection, order: purchasing.Order, cause: Envelope, now: datetime,
) -> list[outbox.Outgoing]:
    """R-F7: amend (or end) the person's live order of the package, else request a new one; each once."""
    if await store.source_key_used(conn, order.source_key):
        return []
    kinds = purchasing.amends(order)
    live = await store.live_order_of(conn, order.event.person_id, kinds) if kinds else None
    if live is None:
        # R-F7: a plan with no line for the package asks for nothing when there is no order to end
        return [] if order.ends_package else await _issue(conn, order, cause, now)
    po_id, person_id = str(live["po_request_id"]), order.event.person_id
    messages = await _end_duplicates(conn, order, live["po_request_id"], kinds, cause, now)
    if order.ends_package:
        end = purchasing.package_end(po_id, order.event, london_date(now))
        await store.amend_po_request(conn, source_key=order.source_key, po_request_id=live["po_request_id"],
                                     step_id=order.event.step_id, changes={"ended": end.end_date.isoformat()},
                                     current=dict(live["current"]), at=now)
        await store.end_po_request(conn, live["po_request_id"], end.end_date, now, end.reason)
        log.info("purchase order ended", extra={"po_request_id": po_id, "kind": live["kind"]})
        return [*messages, EMIT.event(topics.PURCHASING_ORDERS, end, cause, person_id)]
    changes, terms = purchasing.amendment(live["kind"], live["current"], order.event)
    await store.amend_po_request(conn, source_key=order.source_key, po_request_id=live["po_request_id"],
                                 step_id=order.event.step_id, changes=changes, current=terms, at=now)
    if not changes:
        return messages
    log.info("purchase order amended", extra={"po_request_id": po_id, "kind": live["kind"]})
    return [*messages,
            EMIT.event(topics.PURCHASING_ORDERS, purchasing.amended(po_id, changes, order.event), cause, person_id)]


async def _end_duplicates(
    conn: asyncpg.Connection, order: purchasing.Order, kept: uuid.UUID, kinds: tuple[str, ...], cause: Envelope,
    now: datetime,
) -> list[outbox.Outgoing]:
    """R-F7: orders raised for the whole package again before amending was built are duplicates of the one the
    plan changes: they end with it, once, so the package is paid once."""
    end = purchasing.package_end(str(kept), order.event, london_date(now))
    reason = purchasing.duplicate_of(str(kept))
    ended = await store.end_other_live_orders(conn, uuid.UUID(order.event.person_id), kinds, kept, end.end_date,
                                              reason, now)
    for po in ended:
        log.info("duplicate purchase order ended", extra={"po_request_id": str(po)})
    return [EMIT.event(topics.PURCHASING_ORDERS, purchasing.ended(str(po), end.end_date, reason), cause,
                       order.event.person_id) for po in ended]


async def _end_cancelled(conn: asyncpg.Connection, step: Step, cause: Envelope, now: datetime) -> list[outbox.Outgoing]:
    """R-F7: the purchasing step a plan's next action opened is cancelled: the order that action started ends
    today, once; an order it only amended goes on (the package it changed), amended back by that difference."""
    action_id = step.provenance.get("next_action_id")
    if not action_id:
        return []
    today = london_date(now)
    reason = purchasing.support_cancelled(step.step_type, step.step_id)
    ended = await store.end_live_order_of_source(conn, f"next-action:{action_id}", today, reason, now)
    return [*(EMIT.event(topics.PURCHASING_ORDERS, purchasing.ended(str(po), today, reason), cause, step.person_id)
              for po in ended),
            *await _amend_back(conn, step, f"next-action:{action_id}", cause, now)]


async def _amend_back(conn: asyncpg.Connection, step: Step, source_key: str, cause: Envelope,
                      now: datetime) -> list[outbox.Outgoing]:
    """R-F7: the amendment a cancelled step's next action made of a live order, undone once (its own key)."""
    made = await store.amendment_of_live_order(conn, source_key)
    if made is None:
        return []
    changes, terms = purchasing.reversal(dict(made["current"]), dict(made["changes"]))
    undo_key = f"cancelled:{source_key}"
    if not await store.amend_po_request(conn, source_key=undo_key, po_request_id=made["po_request_id"],
                                        step_id=step.step_id, changes=changes, current=terms, at=now) or not changes:
        return []
    po_id = str(made["po_request_id"])
    log.info("purchase order amended back", extra={"po_request_id": po_id})
    undone = PurchaseOrderAmended(po_request_id=po_id, changes=changes, step_id=step.step_id,
                                  effective_date=london_date(now))
    return [EMIT.event(topics.PURCHASING_ORDERS, undone, cause, step.person_id)]


async def _end_case(conn: asyncpg.Connection, person_id: str, cause: Envelope, now: datetime) -> list[outbox.Outgoing]:
    """R-F7: the case closed: each of the person's live orders ends today, once."""
    today = london_date(now)
    ended = await store.end_live_orders(conn, uuid.UUID(person_id), today, purchasing.CASE_CLOSED_REASON, now)
    return [EMIT.event(topics.PURCHASING_ORDERS, purchasing.case_end(str(po), today), cause, person_id) for po in ended]


async def _issue(
    conn: asyncpg.Connection, order: purchasing.Order, cause: Envelope, now: datetime,
) -> list[outbox.Outgoing]:
    """Keep the order under its source key; only the first time: publish it (and watch brokerage's answer)."""
    event = order.event
    watch = purchasing.watches_provision(event.kind)
    inserted = await store.insert_po_request(
        conn, po_request_id=event.po_request_id, source_key=order.source_key, person_id=event.person_id,
        step_id=event.step_id, kind=event.kind, requested=event.model_dump(mode="json"), at=now,
        watching_provision=watch)
    if not inserted:
        return []
    log.info("purchase order requested", extra={"po_request_id": event.po_request_id, "kind": event.kind})
    messages = [EMIT.event(topics.PURCHASING_ORDERS, event, cause, event.person_id)]
    if watch:  # R-F2: 48 hours with no offer puts the person on the lack-of-provision list
        timer = TimerSet(key=purchasing.lack_of_provision_key(event.po_request_id),
                         due_at=purchasing.lack_of_provision_due(now), owner=OWNER,
                         payload={"po_request_id": event.po_request_id})
        messages.append(EMIT.timer(timer, cause, event.person_id))
    return messages


# --- 48 hours without an offer (R-F2) ---------------------------------------------------------------


def is_lack_of_provision(due: TimerDue) -> bool:
    return due.key.startswith(f"{purchasing.LACK_OF_PROVISION_TIMER}:")


async def handle_lack_of_provision_due(pool: asyncpg.Pool, envelope: Envelope, due: TimerDue) -> str:
    """R-F2: still no offer 48 hours after the brokerage order: the person goes on the list."""
    po_id = str(due.payload.get("po_request_id") or due.key.split(":", 1)[1])
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.SCHEDULER_DUE):
            return "duplicate"
        order_id = _uuid(po_id)
        person_id = await store.stop_watching_unprovided(conn, order_id) if order_id else None
        if order_id is None or person_id is None:  # an offer came first, or the timer fired before
            return "stale"
        await store.add_lack_of_provision(conn, order_id, person_id, due.due_at)
    log.info("lack of provision", extra={"po_request_id": po_id})
    return "handled"


# --- brokerage.events (R-F2) ---------------------------------------------------------------------------


@subscriber(router, GROUP, topics.BROKERAGE_EVENTS)
async def on_brokerage_event(msg: KafkaMessage, pool: asyncpg.Pool = Context("pool")) -> None:
    """provider.offered takes the person off lack of provision; provider.confirmed asks for the PVI order.

    Brokerage is an outside system: either CloudEvents content mode is accepted (issue #20).
    """
    envelope = decode_either_mode(msg.body, msg.raw_message.headers)  # type: ignore[union-attr]  # faststream types raw_message for batches too; this subscriber is not one
    models: dict[str, type[ProviderOffered] | type[ProviderConfirmed]] = {
        ProviderOffered.TYPE: ProviderOffered, ProviderConfirmed.TYPE: ProviderConfirmed}
    if envelope.type not in models:
        return
    event = parse(models[envelope.type], envelope)
    outcome = await handle_brokerage_event(pool, envelope, event)
    metrics.MESSAGES.labels(GROUP, topics.BROKERAGE_EVENTS, outcome).inc()


async def handle_brokerage_event(
    pool: asyncpg.Pool, envelope: Envelope, event: ProviderOffered | ProviderConfirmed,
) -> str:
    """Inbox, then the order locked: record the offer or confirmation and emit what follows, once."""
    now = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction():
        if not await inbox.claim(conn, envelope.id, topics.BROKERAGE_EVENTS):
            return "duplicate"
        po_id = _uuid(event.po_request_id)
        order = await store.lock_po_request(conn, po_id) if po_id else None
        if po_id is None or order is None:
            log.warning("brokerage event for an unknown purchase order", extra={"message_id": str(envelope.id)})
            return "unknown_order"
        person_id = str(order["person_id"])
        await store.record_offer(conn, po_id, now, event.provider)
        messages = await _provision_found(conn, po_id, person_id, envelope)
        if isinstance(event, ProviderConfirmed):
            messages += await _confirmed(conn, order, event, envelope, now)
        await outbox.add(conn, messages)
    return "handled"


async def _provision_found(
    conn: asyncpg.Connection, po_id: uuid.UUID, person_id: str, cause: Envelope,
) -> list[outbox.Outgoing]:
    """R-F2: an offer takes the person off the lack-of-provision list and withdraws the 48-hour timer."""
    if not await store.end_lack_of_provision(conn, po_id):
        return []
    cancel = TimerCancel(key=purchasing.lack_of_provision_key(str(po_id)))
    return [EMIT.timer(cancel, cause, person_id)]


async def _confirmed(
    conn: asyncpg.Connection, order: asyncpg.Record, event: ProviderConfirmed, cause: Envelope, now: datetime,
) -> list[outbox.Outgoing]:
    """R-F2: the PVI order with the provider, and the end of the person's interim homecare order(s)."""
    await store.record_confirmation(conn, order["po_request_id"], now, event.provider, event.start_date)
    if not purchasing.confirms_pvi(order["kind"]):
        return []
    requested = PurchaseOrderRequested.model_validate(order["requested"])  # as amended since (R-F7)
    pvi = purchasing.pvi_order(requested, provider=event.provider, start_date=event.start_date,
                               requested_by=f"brokerage:{cause.source}",
                               rate=Decimal(event.rate) if event.rate is not None else None)
    messages = await _issue(conn, pvi, cause, now)
    if not messages:  # the PVI order was asked for before: so were the ends
        return []
    person_id = str(order["person_id"])
    end = purchasing.brokerage_end(str(order["po_request_id"]), provider=event.provider, start_date=event.start_date)
    if await store.end_po_request(conn, order["po_request_id"], end.end_date, now, end.reason):
        messages.append(EMIT.event(topics.PURCHASING_ORDERS, end, cause, person_id))
    for ended in await store.end_interim_orders(conn, order["person_id"], end.end_date, now,
                                                purchasing.pvi_starts(event.provider, event.start_date)):
        end = purchasing.interim_end(str(ended), provider=event.provider, start_date=event.start_date)
        messages.append(EMIT.event(topics.PURCHASING_ORDERS, end, cause, person_id))
    return messages


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


# --- queries -------------------------------------------------------------------------------------------


@queries.get("/purchasing/lack-of-provision")
async def lack_of_provision(request: Request) -> list[dict[str, Any]]:
    """R-F2: people whose brokerage order had no provider offer within 48 hours, longest waiting first."""
    rows = await store.lack_of_provision_list(request.app.state.runtime.pool)
    return [{"person_id": str(r["person_id"]), "po_request_id": str(r["po_request_id"]),
             "step_id": str(r["step_id"]), "since": r["since"].isoformat(),
             "service_description": r["requested"].get("service_description")} for r in rows]


@queries.get("/people/{person_id}/purchase-orders")
async def purchase_orders_of(person_id: uuid.UUID, request: Request) -> list[dict[str, Any]]:
    """The person's purchase orders as published, with brokerage's offer, confirmation, the terms after any
    amendment (`current`, R-F7; null if never amended) and any end."""
    rows = await store.purchase_orders_of(request.app.state.runtime.pool, person_id)
    return [{**r["requested"], "requested_at": r["requested_at"].isoformat(), "current": r["current"],
             "end_reason": r["end_reason"],
             "offered_provider": r["offered_provider"], "confirmed_provider": r["confirmed_provider"],
             "confirmed_start_date": r["confirmed_start_date"].isoformat() if r["confirmed_start_date"] else None,
             "end_date": r["end_date"].isoformat() if r["end_date"] else None,
             "lack_of_provision_watch": r["watching_provision"]} for r in rows]
