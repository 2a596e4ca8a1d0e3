"""Tessera desk's pure rules: what a step form's save sends, where a blocker links, who sees a record."""

import json

from starlette.datastructures import FormData

from services.web import access, forms

STEP = {
    "step_id": "s1", "state": "incomplete", "values": {
        "first_name": "Ada", "notes": "old", "rows": [{"domain": "Home", "need": "Rails\nfitted", "score": 3}]},
    "completed_sections": [],
    "form": {"sections": [
        {"number": 1, "title": "Personal", "read_only": False, "fields": [
            {"key": "first_name", "label": "First name", "type": "text", "cog": "blue"}]},
        {"number": 2, "title": "Carried", "read_only": True, "fields": [
            {"key": "summary", "label": "Summary", "type": "textarea"}]},
        {"number": 3, "title": "Work", "read_only": False, "fields": [
            {"key": "notes", "label": "Notes", "type": "textarea"},
            {"key": "consent", "label": "Consent", "type": "bool", "mandatory": True},
            {"key": "sign_off", "label": "Sign off", "type": "text", "owner_role": "team_manager"},
            {"key": "rows", "label": "Rows", "type": "table", "columns": [
                {"key": "domain", "label": "Domain", "type": "select", "options": ["Home"],
                 "system_generated": True},
                {"key": "need", "label": "Need", "type": "textarea"},
                {"key": "score", "label": "Score", "type": "number"}]}]}]},
}


def form(**values: str | list[str]) -> FormData:
    items: list[tuple[str, str]] = []
    for key, value in values.items():
        items += [(key, v) for v in (value if isinstance(value, list) else [value])]
    return FormData(items)


def test_a_save_sends_only_changed_fields_the_worker_may_write():
    sent = form(**{"v.first_name": "Forged", "v.summary": "Forged", "v.notes": "old", "v.consent": "true",
                   "v.sign_off": "Forged"})
    parsed = forms.parse_save(STEP, sent, roles=["social_worker"])
    assert parsed.values == {"consent": True}
    assert parsed.problems == [] and parsed.completed_sections is None


def test_a_table_keeps_unchanged_rows_and_system_columns_and_browser_newlines():
    sent = form(**{"t.rows.__present": "1", "t.rows.__row": ["0", "n1"], "t.rows.0.need": "Rails\r\nfitted",
                   "t.rows.0.score": "3", "t.rows.n1.need": "Lunch club", "t.rows.n1.score": "2"})
    parsed = forms.parse_save(STEP, sent, roles=[])
    assert parsed.values == {"rows": [{"domain": "Home", "need": "Rails\nfitted", "score": 3},
                                      {"need": "Lunch club", "score": 2}]}


def test_a_value_of_the_wrong_type_is_reported_before_anything_is_sent():
    parsed = forms.parse_save(STEP, form(**{"t.rows.__present": "1", "t.rows.__row": "0",
                                            "t.rows.0.score": "three"}), roles=[])
    assert [p["field"] for p in parsed.problems] == ["rows[0].score"]


def test_section_markers_are_sent_only_when_they_change():
    marked = forms.parse_save(STEP, form(**{"completed_sections.__present": "1", "completed_sections": "3"}), [])
    assert marked.completed_sections == [3]
    same = forms.parse_save(STEP, form(**{"completed_sections.__present": "1"}), [])
    assert same.completed_sections is None


def test_each_blocker_links_to_what_fixes_it():
    assert forms.link_for({"code": "missing_field", "field": "rows[1].score", "section": 3}, "s1") == "#f-rows-1-score"
    assert forms.link_for({"code": "required_request", "message": "x"}, "s1") == "#requests"
    assert forms.link_for({"code": "no_next_action"}, "s1") == "#next-actions"
    assert forms.link_for({"code": "open_step", "step_id": "s2"}, "s1") == "/steps/s2"
    assert forms.link_for({"code": "open_request", "request_id": "r1"}, "s1") == "#request-r1"


def test_blue_cog_carried_and_role_owned_fields_are_read_only_with_the_reason():
    work = STEP["form"]["sections"][2]
    assert not forms.field_access({"cog": "blue"}, work, [], True).editable
    assert not forms.field_access({}, STEP["form"]["sections"][1], [], True).editable
    owned = forms.field_access({"owner_role": "team_manager"}, work, ["social_worker"], True)
    assert (owned.editable, owned.why) == (False, "completed by the team manager")
    assert forms.field_access({"owner_role": "team_manager"}, work, ["team_manager"], True).editable


CHECKLIST = {"number": 3, "title": "Direct Payments Suspension and Termination Checklist", "read_only": False,
             "answered_by": {"request": "Adult Please review information and authorise",
                             "to": {"kind": "team", "id": "adult-care-area"}, "required_now": True},
             "fields": [{"key": "dp_suspended", "label": "Direct payment suspended", "type": "bool"}]}
CLOSURE = {"step_id": "s2", "state": "incomplete", "values": {}, "completed_sections": [], "form": {"sections": [
    {"number": 2, "title": "Closure Details", "read_only": False, "answered_by": None, "fields": [
        {"key": "closure_notes", "label": "Notes", "type": "textarea"}]}, CHECKLIST]}}


def test_R_C5_the_checklist_is_written_on_the_desk_only_by_the_team_its_request_goes_to():
    closer = forms.field_access(CHECKLIST["fields"][0], CHECKLIST, ["gso"], True, team_ids=["wellbeing-service-hub"])
    assert not closer.editable and "LCC Adult Care (Area) Team" in closer.why
    assert forms.field_access(CHECKLIST["fields"][0], CHECKLIST, ["social_worker"], True,
                              team_ids=["adult-care-area"]).editable
    sent = form(**{"v.closure_notes": "Died 1 July", "v.dp_suspended": "true"})
    assert forms.parse_save(CLOSURE, sent, ["gso"], team_ids=["wellbeing-service-hub"]).values == {
        "closure_notes": "Died 1 July"}
    assert forms.parse_save(CLOSURE, sent, ["social_worker"], team_ids=["adult-care-area"]).values == {
        "closure_notes": "Died 1 July", "dp_suspended": True}


def test_R_C5_the_area_worker_the_request_went_to_writes_only_the_checklist_not_the_closers_sections():
    """Issue #22 R-C5: workflow refuses every other field from who answers the request, so the desk does not offer
    them for writing, and a save from that worker sends the checklist only."""
    area = forms.field_access(CLOSURE["form"]["sections"][0]["fields"][0], CLOSURE["form"]["sections"][0],
                              ["social_worker"], True, team_ids=["adult-care-area"], answering_only=True)
    assert not area.editable and "the step's worker" in area.why
    sent = form(**{"v.closure_notes": "typed anyway", "v.dp_suspended": "true", "completed_sections": "2",
                   "completed_sections.__present": "1"})
    saved = forms.parse_save(CLOSURE, sent, ["social_worker"], team_ids=["adult-care-area"], answering_only=True)
    assert (saved.values, saved.completed_sections) == ({"dp_suspended": True}, None)


def test_R_C5_a_question_answered_from_live_orders_names_them_in_words():
    step = {"provenance": {"prefilled": {"had_direct_payment": {
        "source": "purchase_orders", "kinds": ["direct_payment"], "po_request_ids": ["po-1", "po-2"]}}}}
    said = forms.prefilled(step, "had_direct_payment")
    assert said and "live direct payment purchase orders" in said and "orders po-1, po-2" in said
    assert forms.prefilled(step, "closure_notes") is None and forms.prefilled({}, "had_direct_payment") is None


def test_a_worker_sees_people_they_are_allocated_to_or_whose_work_is_theirs_or_their_teams():
    mine = {"worker_id": "sw", "team_ids": ["north"], "person_id": "p1"}
    assert access.why_allowed(**mine, relationships={"worker_relationships": [{"worker_id": "sw", "open": True}]})
    assert access.why_allowed(**mine, steps=[{"state": "incoming", "step_type": "X",
                                              "assignee": {"kind": "team", "id": "north"}}])
    assert access.why_allowed(**mine, tray_person_ids=["p1"])
    assert access.why_allowed(**mine, inbox=[{"person_id": "p1", "name": "R", "to": {"kind": "worker", "id": "sw"}}])
    assert access.why_allowed(**mine, steps=[{"state": "finished", "step_type": "X",
                                              "assignee": {"kind": "worker", "id": "sw"}}]) is None
    assert access.why_allowed(**mine, steps=[{"state": "incoming", "step_type": "X",
                                              "assignee": {"kind": "team", "id": "south"}}]) is None


def test_issue_21_access_follows_the_work_to_the_managers_who_handed_it_out():
    """R-A3: a team manager who allocated a case within their team, and a manager above teams, open the record
    without a break-glass reason; a colleague in the team, or the manager of another team, still needs one."""
    allocated = {"worker_relationships": [{"worker_id": "sw", "team_id": "north", "open": True}]}
    person = {"person_id": "p1", "relationships": allocated}
    assert access.why_allowed(worker_id="tm", team_ids=["north"], roles=["team_manager"], **person)
    assert access.why_allowed(worker_id="so", team_ids=[], roles=["senior_officer"], person_id="p1")
    assert access.why_allowed(worker_id="sw2", team_ids=["north"], roles=["social_worker"], **person) is None
    assert access.why_allowed(worker_id="tm2", team_ids=["south"], roles=["team_manager"], **person) is None
    ended = {"worker_relationships": [{"worker_id": "sw", "team_id": "north", "open": False}]}
    assert access.why_allowed(worker_id="tm", team_ids=["north"], roles=["team_manager"], person_id="p1",
                              relationships=ended) is None



def test_issue_21_whoever_assigned_open_work_sees_the_person_until_it_is_done():
    """A team manager who assigned a step to one of their workers opens the record without a break-glass reason
    while the work is open; once it is finished, or for another's assignment, a reason is needed again."""
    assigned = {"state": "incomplete", "step_type": "Care and Support Plan", "assigned_by": "tm",
                "assignee": {"kind": "worker", "id": "sw"}}
    tm = {"worker_id": "tm", "team_ids": ["north"], "roles": ["team_manager"], "person_id": "p1"}
    assert access.why_allowed(**tm, steps=[assigned]) == "you assigned the Care and Support Plan"
    assert access.why_allowed(**tm, steps=[{**assigned, "state": "finished"}]) is None
    assert access.why_allowed(**tm, steps=[{**assigned, "assigned_by": "tm2"}]) is None

# --- #20 part 5: a save sends only what the person changed on the form as it was rendered ---------

NEWER = {**STEP, "values": {**STEP["values"], "notes": "saved in another tab", "consent": True}}


def _rendered_with(step, **values: str | list[str]) -> FormData:
    return form(rendered=json.dumps(forms.rendered(step, ["social_worker"])), **values)


def test_issue_20_fields_saved_since_in_another_tab_are_not_sent_as_blanks():
    """The older tab shows notes "old" and consent unanswered; the step has both saved since."""
    older = _rendered_with(STEP, **{"v.notes": "old", "v.consent": "", "v.sign_off": "", "t.rows.__present": "1",
                                    "t.rows.__row": "0", "t.rows.0.need": "Rails\nfitted", "t.rows.0.score": "4"})
    parsed = forms.parse_save(NEWER, older, roles=["social_worker"])
    assert parsed.values == {"rows": [{"domain": "Home", "need": "Rails\nfitted", "score": 4}]}
    # what the person did change is sent, even back to what the form first showed
    changed = _rendered_with(STEP, **{"v.notes": "", "v.consent": "false"})
    assert forms.parse_save(NEWER, changed, roles=["social_worker"]).values == {"notes": None, "consent": False}


def test_issue_20_the_rendered_values_are_the_editable_fields_only_and_a_damaged_copy_is_refused():
    shown = forms.rendered(STEP, ["social_worker"])
    assert shown == {"values": {"notes": "old", "consent": None, "rows": STEP["values"]["rows"]},
                     "completed_sections": []}
    damaged = forms.parse_save(STEP, form(rendered="{not json Ada", **{"v.notes": "new"}), roles=[])
    assert damaged.values == {} and [p["field"] for p in damaged.problems] == ["rendered"]
    assert "Ada" not in json.dumps(damaged.problems)


def test_issue_20_section_markers_compare_with_the_markers_the_form_showed():
    marked_since = {**STEP, "completed_sections": [3]}
    untouched = _rendered_with(STEP, **{"completed_sections.__present": "1"})
    assert forms.parse_save(marked_since, untouched, roles=[]).completed_sections is None


def test_issue_20_history_shows_each_changed_field_from_what_to_what():
    details = {"changes": [{"field": "notes", "from": "old", "to": "new"},
                           {"field": "consent", "from": None, "to": True}]}
    assert forms.saved_changes(STEP, details) == [{"label": "Notes", "from": "old", "to": "new"},
                                                  {"label": "Consent", "from": "—", "to": "Yes"}]
    assert forms.saved_changes(STEP, {"fields": ["notes"]}) == []
