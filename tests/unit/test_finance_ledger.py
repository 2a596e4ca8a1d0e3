"""The reference finance consumer (tools/finance_ledger.py): each order counted once, sums exact."""

import json
import uuid
from decimal import Decimal
from pathlib import Path

from tools import finance_ledger


def _message(type_: str, data: dict, message_id: str | None = None) -> bytes:
    return json.dumps({"specversion": "1.0", "id": message_id or str(uuid.uuid4()), "type": type_,
                       "data": data}).encode()


def _order(po: str, weekly: str, annual: str, kind: str = "brokerage") -> dict:
    return {"po_request_id": po, "person_id": "p", "step_id": "s", "kind": kind, "weekly_cost": weekly,
            "annual_cost": annual, "requested_by": "cc-1"}


def test_R_F1_a_redelivered_message_and_a_republished_order_are_each_counted_once(tmp_path: Path) -> None:
    conn = finance_ledger.open_ledger(tmp_path / "l.sqlite")
    first = _message("purchase_order.requested", _order("po-1", "168.53", "7752.38"))
    changed = finance_ledger.apply(conn, [
        first, first,  # redelivered
        _message("purchase_order.requested", _order("po-1", "168.53", "7752.38")),  # same order, new message id
        _message("purchase_order.requested", _order("po-2", "85.40", "4440.80", "direct_payment")),
        b"not json", None,
    ])
    assert changed == 2
    totals = finance_ledger.totals(conn)
    assert (totals["orders"], totals["weekly"], totals["annual"]) == (2, Decimal("253.93"), Decimal("12193.18"))


def test_R_F2_an_end_request_ends_the_order_once(tmp_path: Path) -> None:
    conn = finance_ledger.open_ledger(tmp_path / "l.sqlite")
    end = {"po_request_id": "po-1", "end_date": "2024-08-01", "reason": "PVI starts"}
    interim = _order("po-1", "1.00", "52.00", "interim_homecare")
    finance_ledger.apply(conn, [_message("purchase_order.requested", interim),
                                _message("purchase_order.end_requested", end),
                                _message("purchase_order.end_requested", {**end, "end_date": "2024-09-01"})])
    assert conn.execute("SELECT end_date FROM ledger").fetchall() == [("2024-08-01",)]
    assert finance_ledger.totals(conn)["ended"] == 1
    assert "interim_homecare: 1 orders" in finance_ledger.report(conn)


def test_R_F7_an_amendment_changes_the_costs_and_each_person_shows_their_live_orders_and_totals(
        tmp_path: Path) -> None:
    conn = finance_ledger.open_ledger(tmp_path / "l.sqlite")
    amend = {"po_request_id": "po-1", "changes": {
        "weekly_cost": {"from": "168.53", "to": "192.60", "difference": "24.07"},
        "annual_cost": {"from": "7752.38", "to": "8859.60", "difference": "1107.22"}}}
    finance_ledger.apply(conn, [
        _message("purchase_order.requested", _order("po-1", "168.53", "7752.38")),
        _message("purchase_order.requested", {**_order("po-2", "85.40", "4440.80", "direct_payment")}),
        _message("purchase_order.requested", {**_order("po-3", "3.50", "182.00", "telecare"), "person_id": "q"}),
        _message("purchase_order.amended", amend),
        _message("purchase_order.end_requested", {"po_request_id": "po-2", "end_date": "2024-09-01", "reason": "r"}),
    ])
    live = finance_ledger.people(conn)
    assert {p: ([o["po_request_id"] for o in r["orders"]], r["weekly"], r["annual"]) for p, r in live.items()} == {
        "p": (["po-1"], Decimal("192.60"), Decimal("8859.60")), "q": (["po-3"], Decimal("3.50"), Decimal("182.00"))}
    # as of the day the DP order ends it is still live
    assert finance_ledger.people(conn, as_of="2024-09-01")["p"]["weekly"] == Decimal("278.00")
    assert "p: 1 live orders, weekly £192.60, annual £8859.60" in finance_ledger.people_report(conn)
