"""Pure rules of the notifications service: inbox items, overdue reminders (R-S2), messages to people (R-T4)."""

import re
from datetime import UTC, date, datetime, timedelta

import pytest

from services.notifications import domain
from services.notifications.domain import Contact, Team, TeamDirectory
from shared.events.workflow import Assignee, NotificationSent, RequestRaised
from shared.teams import teams

SENT = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
NORTH = Assignee(kind="team", id="wellbeing-service-north")


def raised(**overrides: object) -> RequestRaised:
    data: dict[str, object] = dict(
        step_id="step-1", person_id="person-1", actor="hub-1", version=3, request_id="req-1",
        step_type="WB Wellbeing Screening", name="(R) WB Please action", required=False, to=NORTH,
        note="Please visit", step_state="incomplete")
    return RequestRaised.model_validate({**data, **overrides})


def item(**overrides: object) -> domain.InboxItem:
    return domain.delivered(raised(**overrides), sent_at=SENT, due_days=5)


# --- inbox items (R-RQ1) ----------------------------------------------------------------------


def test_R_RQ1_a_raised_request_becomes_an_open_item_for_its_recipient_with_who_sent_it():
    got = item()
    assert (got.kind, got.state, got.recipient_kind, got.recipient_id) == ("request", "open", "team", NORTH.id)
    assert (got.step_id, got.person_id, got.name, got.note, got.sent_by, got.sent_at) == (
        "step-1", "person-1", "(R) WB Please action", "Please visit", "hub-1", SENT)


def test_R_RQ1_a_notification_becomes_an_item_that_never_falls_due():
    sent = NotificationSent(step_id="s", person_id="p", actor="hub-1", version=2, request_id="n-1",
                            step_type="WB Case Monitoring", name="FYI", to=Assignee(kind="worker", id="w-1"),
                            note=None)
    got = domain.delivered(sent, sent_at=SENT, due_days=5)
    assert (got.kind, got.state, got.due_at, got.recipient_kind) == ("notification", "open", None, "worker")


def test_R_RQ2_completion_closes_an_open_request_once():
    done = domain.complete(item(), by="ta-1", at=SENT + timedelta(hours=1))
    assert done is not None
    assert (done.state, done.closed_by, done.closed_reason) == ("completed", "ta-1", "completed")
    assert domain.complete(done, by="ta-1", at=SENT) is None
    assert domain.complete(None, by="ta-1", at=SENT) is None


def test_R_W2_a_cancelled_step_withdraws_its_open_requests_but_not_notifications_or_closed_ones():
    notification = domain.delivered(
        NotificationSent(step_id="step-1", person_id="p", actor="a", version=1, request_id="n", step_type="t",
                         name="n", to=NORTH, note=None), sent_at=SENT, due_days=5)
    done = domain.complete(item(request_id="req-2"), by="x", at=SENT)
    assert done is not None
    withdrawn = domain.withdraw([item(), notification, done], by="so-1", at=SENT, why="step_cancelled")
    assert [(w.request_id, w.state, w.closed_reason) for w in withdrawn] == [("req-1", "withdrawn", "step_cancelled")]


def test_R_RQ4_a_returned_step_withdraws_only_its_required_requests():
    required, optional = item(request_id="r", required=True), item(request_id="o")
    withdrawn = domain.withdraw([required, optional], by="so-1", at=SENT, why="step_returned", required_only=True)
    assert [w.request_id for w in withdrawn] == ["r"]


# --- overdue requests (R-S2) ------------------------------------------------------------------


def test_R_S2_a_request_falls_due_after_the_configured_days():
    assert item().due_at == SENT + timedelta(days=5)
    assert domain.delivered(raised(), sent_at=SENT, due_days=2).due_at == SENT + timedelta(days=2)


def test_R_S2_a_due_date_is_overdue_when_that_day_ends_in_london_in_summer_and_winter():
    assert domain.due_at(SENT, 5, date(2024, 6, 10)) == datetime(2024, 6, 10, 23, 0, tzinfo=UTC)  # BST
    assert domain.due_at(SENT, 5, date(2024, 12, 10)) == datetime(2024, 12, 11, 0, 0, tzinfo=UTC)  # GMT


def test_R_S2_the_request_due_date_or_time_is_read_from_the_event_when_it_carries_one():
    assert domain.requested_due({"due_date": "2024-06-10"}) == date(2024, 6, 10)
    assert domain.requested_due({"due_at": "2024-06-10T09:00:00+00:00"}) == datetime(2024, 6, 10, 9, tzinfo=UTC)
    assert domain.requested_due({"due_date": "soon", "due_at": "2024-06-10T09:00:00"}) is None
    assert domain.requested_due({}) is None


def test_R_S2_the_overdue_timer_key_names_the_request():
    assert domain.timer_key("req-1") == "request-overdue:req-1"
    assert domain.request_of_timer("request-overdue:req-1") == "req-1"
    assert domain.request_of_timer("tray-review:req-1") is None
    assert domain.request_of_timer("request-overdue:") is None


def test_R_S2_an_open_request_past_due_is_marked_overdue_and_reminded_once():
    open_item = item()
    assert open_item.due_at is not None
    now = open_item.due_at + timedelta(seconds=1)
    reminded = domain.remind(open_item, timer_due_at=open_item.due_at, now=now)
    assert reminded is not None
    assert (reminded.overdue, reminded.reminded_at, reminded.state) == (True, now, "open")
    assert domain.remind(reminded, timer_due_at=open_item.due_at, now=now) is None


def test_R_S2_stale_timers_do_nothing():
    open_item = item()
    assert open_item.due_at is not None
    done = domain.complete(open_item, by="ta", at=SENT)
    assert domain.remind(done, timer_due_at=open_item.due_at, now=SENT) is None
    assert domain.remind(open_item, timer_due_at=open_item.due_at - timedelta(days=1), now=SENT) is None
    assert domain.remind(None, timer_due_at=open_item.due_at, now=SENT) is None


# --- messages to people (R-T4) ----------------------------------------------------------------

TEAMS = TeamDirectory.from_mapping({
    "default": {"name": "Adult Social Care", "number": "0116 496 0999"},
    "teams": {"wellbeing-service-north": {"number": "0116 496 0101"}},
}, teams())


ADDRESS = ("1 Example Street", "Leicester", "LE1 1AA")
NOTIFY = domain.Reach(sms=True, any_letter=True)
NORTH_LIST = domain.WaitingList(Team("Wellbeing Service North", "0116 496 0101"), "at least once every two weeks")


def contact(**overrides: object) -> Contact:
    data: dict[str, object] = dict(name="Ada Example", email="ada@example.org", phone="07700 900123",
                                   address=ADDRESS, preferred=None)
    return Contact(**{**data, **overrides})  # type: ignore[arg-type]


def test_R_T4_team_name_and_number_from_the_table_else_the_default_and_a_carried_number_wins():
    assert TEAMS.team("wellbeing-service-north") == Team("Wellbeing Service North", "0116 496 0101")
    assert TEAMS.team("locality-east") == Team("Adult Social Care", "0116 496 0999")
    assert TEAMS.team("wellbeing-service-north", "0116 496 0555").number == "0116 496 0555"


def test_R_T4_the_shipped_team_table_names_every_team_with_a_number_to_call():
    from pathlib import Path

    import yaml

    shipped = TeamDirectory.from_mapping(yaml.safe_load(Path("services/notifications/teams.yaml").read_text()), teams())
    assert "wellbeing-service-north" in shipped.teams and "adult-front-door" in shipped.teams
    for team in (*shipped.teams.values(), shipped.default):
        assert team.name.strip() and re.fullmatch(r"0\d{3} \d{3} \d{4}", team.number), team


@pytest.mark.parametrize(("written", "channel"), [
    ("email", "email"), ("E-mail", "email"), ("Text message", "sms"), ("SMS", "sms"), ("mobile", "sms"),
    ("Letter", "letter"), ("post", "letter"), ("In writing", "letter"), ("Telephone", "phone"),
    ("phone", "phone"), ("carrier pigeon", None), (None, None),
])
def test_R_T4_preferred_contact_as_people_write_it(written, channel):
    assert domain.preference(written) == channel


def channel(preferred: str | None, reach: domain.Reach = NOTIFY, requested: str | None = None,
            **overrides: object) -> tuple[str | None, str, str | None]:
    plan = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred=preferred, **overrides), requested, reach)
    return plan.channel, plan.status, plan.fallback_reason


@pytest.mark.parametrize(("preferred", "overrides", "expected"), [
    ("email", {}, ("email", "pending", None)),
    ("sms", {}, ("sms", "pending", None)),
    ("letter", {}, ("letter", "pending", None)),
    (None, {}, ("letter", "pending", None)),
    ("phone", {}, ("phone", "phone_call_task", None)),  # R-T4: the team phones, as the person prefers
    ("phone", {"phone": None}, ("letter", "pending", "no_phone_number")),
    ("email", {"email": None}, ("letter", "pending", "no_email_address")),
    ("sms", {"phone": "0116 496 0000"}, ("letter", "pending", "no_mobile_number")),
    ("sms", {"phone": None, "address": ()}, ("email", "pending", "no_mobile_number")),
    ("letter", {"address": (), "email": None, "phone": None}, (None, "failed", None)),
    ("letter", {"address": (), "email": None, "phone": "0116 496 0000"}, ("phone", "phone_call_task", "no_address")),
])
def test_R_T4_the_preferred_channel_where_the_record_allows_it_else_the_next(preferred, overrides, expected):
    assert channel(preferred, **overrides) == expected


def test_R_T4_without_a_real_sms_provider_a_text_falls_back_to_a_letter_else_a_phone_call_never_sent():
    """§8: with no SMS provider an SMS is never recorded as sent: a letter, else the team phones."""
    assert channel("sms", domain.Reach()) == ("letter", "queued_for_print", "no_sms_provider")
    assert channel("sms", domain.Reach(), email=None, address=()) == ("phone", "phone_call_task", "no_sms_provider")
    plan = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred="sms", address=()), None, domain.Reach())
    assert (plan.channel, plan.fallback_from, plan.fallback_reason) == ("email", "sms", "no_sms_provider")


def test_R_T4_the_record_preference_wins_and_the_request_channel_is_a_fallback():
    assert channel("sms", requested="email")[0] == "sms"
    assert channel(None, requested="email")[0] == "email"


def test_R_T4_mobile_numbers():
    assert all(domain.is_mobile(n) for n in ("07700 900123", "+44 7700 900123", "(07700) 900-123"))
    assert not any(domain.is_mobile(n) for n in ("0116 496 0000", "0770090012", "", None))


def test_R_T4_seed_004_the_message_says_what_regular_contact_to_expect_by_rag():
    assert [domain.regular_contact(r) for r in ("red", "amber", "green", None)] == [
        "at least once a week", "at least once every two weeks", "at least once a month", "at least once a month"]


def test_R_T4_email_says_the_person_is_on_the_waiting_list_with_the_team_number_and_regular_contact():
    plan = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred="email"), None, NOTIFY)
    assert (plan.status, plan.channel, plan.template) == ("pending", "email", "pwt_waiting_list")
    assert plan.rendered is not None and plan.rendered.to == "ada@example.org"
    assert plan.rendered.subject == "You are on the waiting list for Wellbeing Service North"
    assert plan.rendered.body.startswith("Dear Ada Example,")
    assert ("someone from the team will contact you at least once every two weeks to check that you are safe and"
            " well") in plan.rendered.body
    assert "If your situation changes, please call 0116 496 0101." in plan.rendered.body


def test_R_T4_an_sms_is_short_and_carries_no_name():
    plan = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred="text"), None, NOTIFY)
    assert plan.rendered is not None and plan.rendered.to == "07700 900123"
    assert plan.rendered.body == ("You are on the waiting list for Wellbeing Service North. We will contact you at"
                                  " least once every two weeks while you wait. If your situation changes call"
                                  " 0116 496 0101.")
    assert "Ada" not in plan.rendered.body


def test_R_T4_a_letter_goes_to_notify_with_the_address_else_is_queued_for_print():
    posted = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred="post"), None, NOTIFY)
    assert (posted.status, posted.channel) == ("pending", "letter")
    assert posted.rendered is not None and posted.rendered.address == ("Ada Example", *ADDRESS)
    queued = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred="post"), None, domain.Reach())
    assert (queued.status, queued.channel) == ("queued_for_print", "letter")


@pytest.mark.parametrize(("needs", "chan", "template"), [
    (["Large print"], "letter", "pwt_waiting_list_large_print"),
    (["large print"], "email", "pwt_waiting_list"),  # an email can be enlarged on screen
    (["Easy Read"], "letter", "pwt_waiting_list_easy_read"),
    (["Easy read", "Large print"], "sms", "pwt_waiting_list_easy_read"),
])
def test_R_T4_the_message_is_in_the_persons_communication_format(needs, chan, template):
    preferred = {"letter": "post", "email": "email", "sms": "text"}[chan]
    plan = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred=preferred, needs=domain.needs_of(needs)),
                               None, NOTIFY)
    assert (plan.channel, plan.template) == (chan, template)


def test_R_T4_easy_read_is_short_plain_sentences():
    plan = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred="post",
                                                                needs=domain.needs_of(["Easy read"])), None, NOTIFY)
    assert plan.rendered is not None
    assert "A worker will contact you when one is free." in plan.rendered.body
    assert "If things change for you, please phone us on 0116 496 0101." in plan.rendered.body


def test_R_T4_an_interpreter_need_makes_a_phone_call_for_the_team_whatever_the_preference():
    plan = domain.plan_message("pwt_added", NORTH_LIST, contact(preferred="email",
                                                                needs=domain.needs_of(["Interpreter - Polish"])),
                               None, NOTIFY)
    assert (plan.channel, plan.status, plan.fallback_from, plan.fallback_reason) == (
        "phone", "phone_call_task", "email", "interpreter_needed")
    assert domain.needs_of(["BSL"]).interpreter and not domain.needs_of(["Hearing aid"]).interpreter


def test_R_T4_the_print_queue_prints_only_the_standard_letter_to_the_person():
    """Without Notify a large print letter, or one to a representative, cannot be printed: the next channel."""
    large = contact(preferred="post", needs=domain.needs_of(["Large print"]), email=None, phone="0116 496 0000")
    assert channel("post", domain.Reach(), needs=large.needs, email=None, phone="0116 496 0000") == (
        "phone", "phone_call_task", "letter_not_printable")
    to_rep = domain.plan_message("pwt_added", domain.WaitingList(NORTH_LIST.team, "x", "Ada", True),
                                 contact(preferred="post"), None, domain.Reach())
    assert (to_rep.channel, to_rep.fallback_reason) == ("email", "letter_not_printable")


def test_R_T4_a_representative_is_told_about_the_person_by_name():
    about = domain.WaitingList(NORTH_LIST.team, "at least once a week", person_name="Ada Example",
                               to_representative=True)
    plan = domain.plan_message("pwt_added", about, contact(name="Bo Rep", preferred="email"), None, NOTIFY)
    assert plan.rendered is not None
    assert plan.rendered.subject == "The person you represent is on the waiting list for Wellbeing Service North"
    assert plan.rendered.body.startswith("Dear Bo Rep,\n\nAda Example is on the waiting list for Wellbeing")
    assert "contact them or you at least once a week" in plan.rendered.body
    assert "If their situation changes, please call 0116 496 0101." in plan.rendered.body


def test_R_T4_the_representative_is_the_other_side_of_an_open_representative_relationship():
    me = {"person_id": "p1", "relationships": [
        {"person_id": "old", "other_person_id": "p1", "relationship": "Representative of", "end_date": "2024-01-01"},
        {"person_id": "c1", "other_person_id": "p1", "relationship": "Carer of", "end_date": None},
        {"person_id": "r1", "other_person_id": "p1", "relationship": "Representative of", "end_date": None}]}
    assert domain.representative_of(me) == "r1"
    assert domain.representative_of({"person_id": "p1", "relationships": [
        {"person_id": "p1", "other_person_id": "r2", "relationship": "Represented by", "end_date": None}]}) == "r2"
    assert domain.representative_of({"person_id": "p1", "relationships": []}) is None


@pytest.mark.parametrize(("reason", "person", "code"), [
    ("pwt_added", None, "person_not_found"),
    ("pwt_added", Contact(None, None, None, (), "email"), "no_contact_details"),
    ("something_else", Contact("A", "a@example.org", None, ADDRESS, None), "unknown_reason"),
])
def test_R_T4_a_message_that_cannot_go_fails_with_a_code(reason, person, code):
    plan = domain.plan_message(reason, NORTH_LIST, person, None, NOTIFY)
    assert (plan.status, plan.error_code, plan.rendered) == ("failed", code, None)


def test_R_T4_contact_details_come_from_the_person_record():
    person = {"first_name": " Ada ", "last_name": "Example", "email": "", "phone": "07700 900123",
              "address": {"line1": "1 Example Street", "postcode": "LE1 1AA"}, "preferred_contact": "Text",
              "communication_needs": ["Large print"]}
    got = domain.contact_of(person)
    assert got == Contact("Ada Example", None, "07700 900123", ("1 Example Street", "LE1 1AA"), "Text",
                          domain.Needs(large_print=True))
    assert domain.contact_of({"address": {"line1": "1 Street"}}).has_address is False


def test_R_T4_the_phone_call_task_tells_the_team_what_to_say_and_why_a_call():
    at = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    call = domain.phone_call_task(message_id="m-1", person_id="p1", team_id="wellbeing-service-north",
                                  entry_id="e-1", addressee="representative", about=NORTH_LIST,
                                  why="interpreter_needed", at=at)
    assert (call.kind, call.task_code, call.rule, call.recipient_kind, call.recipient_id) == (
        "task", "phone_call", "R-T4", "team", "wellbeing-service-north")
    assert call.name == "Phone the person's representative: on the waiting list"
    assert call.note is not None and "at least once every two weeks" in call.note and "0116 496 0101" in call.note
    assert "arrange one for the call" in call.note
