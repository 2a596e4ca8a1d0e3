"""The person page's statutory timescales (R-CL5, R-CL6; issue #19 §2): each running clock with the version of its
timescale, its due date as the desk writes dates, its status, and a paused clock's why and since when."""

import re

from services.web.pages import templates


def clock(**overrides: object) -> dict[str, object]:
    """A clock as GET /people/{id}/clocks answers."""
    return {"clock_id": "c-1", "clock": "child_and_family_assessment", "rule": "R-CL3", "definition_version": 3,
            "title": "Child and Family Assessment within 45 working days of referral", "state": "running",
            "status": "at_risk", "due_date": "2027-02-24", "breached_at": None, "paused": None,
            "next_point": {"point": "breach", "at": "2027-02-25T00:00:00+00:00"}, **overrides}


def shown(clocks: list[dict[str, object]] | None) -> list[str]:
    """Each row of the timescales table as a reader sees it, its cells joined by " | "."""
    html = templates.env.get_template("macros.html").module.timescales_table(clocks)  # type: ignore[attr-defined]
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", str(html), re.S)
    cells = [re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S) for row in rows]
    return [" | ".join(" ".join(re.sub(r"<[^>]+>", "", c).split()) for c in row) for row in cells]


def test_R_CL6_a_running_clock_shows_its_version_its_due_date_as_the_desk_writes_dates_and_its_next_point():
    assert shown([clock()])[1:] == [
        "Child and Family Assessment within 45 working days of referral (R-CL3, version 3) | 24 Feb 2027 | At risk"
        " | Breaches at 25 Feb 2027 00:00"]


def test_R_CL5_a_paused_clock_says_why_and_since_when():
    paused = clock(state="paused", status="on_track", next_point=None,
                   paused={"since": "2026-12-04T13:20:00+00:00", "reason": "Waiting for information from health"})
    assert shown([paused])[1:] == [
        "Child and Family Assessment within 45 working days of referral (R-CL3, version 3) | 24 Feb 2027 | Paused"
        " | Paused since 04 Dec 2026 13:20: Waiting for information from health"]


def test_R_CL6_no_clock_and_no_answer_are_told_apart():
    assert shown([]) == ["No statutory timescale is running."]
    assert shown(None) == ["The clocks service could not be read just now."]
