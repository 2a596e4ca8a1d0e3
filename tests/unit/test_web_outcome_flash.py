"""The message a worker reads after sending a command, by what became of it (R-W4)."""

from types import SimpleNamespace
from typing import Any, cast

import pytest

from services.web import pages
from services.web.commands import NOT_CONFIRMED, Outcome


async def _flash_after(outcome: Outcome) -> dict[str, Any]:
    shown: list[dict[str, Any]] = []

    class Sessions:
        async def flash(self, pool: object, token: object, flash: dict[str, Any]) -> None:
            shown.append(flash)

    state = SimpleNamespace(sessions=Sessions(), runtime=SimpleNamespace(pool=None))
    request = cast(Any, SimpleNamespace(app=SimpleNamespace(state=state), cookies={}))
    await pages.report(request, outcome, "Started: the step is in your incomplete work.")
    return shown[0]


@pytest.mark.parametrize(("outcome", "heading"), [
    (Outcome("c-1", "step.start", unconfirmed=True), "Not confirmed:"),
    (Outcome("c-1", "step.start", events=[{"type": "command.rejected", "data": {"reasons": []}}]),
     "That was not done:"),
    (Outcome("c-1", "step.start", events=[{"type": "step.started"}]), "Started: the step is in your incomplete work."),
])
async def test_R_W4_the_worker_reads_whether_the_command_was_done_refused_or_perhaps_not_sent(outcome, heading):
    assert (await _flash_after(outcome))["message"] == heading


async def test_R_W4_a_command_perhaps_not_sent_says_to_look_before_sending_it_again():
    flash = await _flash_after(Outcome("c-1", "step.start", unconfirmed=True))
    assert flash["kind"] == "error" and flash["reasons"] == [NOT_CONFIRMED]
