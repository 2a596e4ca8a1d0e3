"""Issue #22 §7, R-W5: a prepopulated select takes the option the referral means (`prepopulate_values`): who
referred, read from the referral's category, sending system, and the referrer's role and organisation; a referral
that says nothing of it leaves the field empty, and who sent it is shown as sent beside it; a map to a value that is
not an option is refused."""

from pathlib import Path
from typing import Any

import pytest

from services.workflow import domain
from services.workflow.domain.intake import REFERRED_BY, referred_by
from services.workflow.pack import PackError, load_packs
from tests.workflow_harness import Engine

SCREENING = "WB Wellbeing Screening"
HOSPITAL = {"organisation": "Leicester Royal Infirmary", "role": "Discharge coordinator"}


def prefilled(referral: dict[str, Any], step_type: str = SCREENING, key: str = "referral_source") -> object:
    defn = Engine().packs.step(step_type)
    person = {"referral": domain.referral_values(referral)}
    return domain.prepopulated(defn, person, cogs=frozenset({"yellow"}))[key]


@pytest.mark.parametrize(("referral", "option"), [
    ({"source": "csc-contact-centre"}, "Customer Service Centre"),
    ({"source": "uhl-patient-flow", "referrer": HOSPITAL}, "GP or health professional"),
    ({"source": "systmone", "referrer": {"organisation": "Example GP Practice", "role": "GP"}},
     "GP or health professional"),
    ({"source": "lcc-mosaic", "referrer": {"organisation": "Adult Social Care", "role": "Social Worker"}},
     "LCC Adult Care practitioner"),
    ({"source": "online-form", "referrer": {"role": "Self-referral"}}, "Self"),
    ({"source": "online-form", "referrer": {"name": "Pat", "role": "Daughter"}}, "Family or friend"),
    ({"source": "partner-portal", "referrer": {"organisation": "Age UK Leicester", "role": "Advisor"}},
     "Other agency"),
    ({"source": "another-system", "referrer": {"name": "Pat"}}, None),
    ({"source": None}, None),
])
def test_R_W5_the_screenings_referral_source_is_the_option_the_referral_means(
        referral: dict[str, Any], option: str | None) -> None:
    assert prefilled(referral) == option


def test_R_W5_an_adult_contact_from_a_hospital_discharge_says_hospital_and_a_contact_centre_call_is_left_open():
    assert prefilled({"category": "hospital_discharge", "source": "csc-contact-centre"}, "Adult Contact",
                     "contact_source") == "Hospital"
    assert prefilled({"category": "assessment", "source": "csc-contact-centre"}, "Adult Contact",
                     "contact_source") is None


def test_R_W5_every_kind_a_pack_maps_is_one_workflow_reads_from_a_referral() -> None:
    packs = Engine().packs
    fields = [f for step_type in packs.step_types() for s in packs.step(step_type).form_sections
              for f in s.fields if f.prepopulate_from == "referral.referred_by"]
    assert fields and all(set(f.prepopulate_values) <= set(REFERRED_BY) for f in fields)


def test_R_W5_a_source_mapped_to_no_option_is_refused(tmp_path: Path) -> None:
    for pack in Path("services/workflow/definitions").glob("*.yaml"):
        text = pack.read_text().replace("contact_centre: Customer Service Centre", "contact_centre: CSC")
        (tmp_path / pack.name).write_text(text)
    with pytest.raises(PackError, match="prepopulate_values"):
        load_packs(tmp_path)


# each kind of referrer, as each first step's options say it (ADULT CONTACT: the contact centre passes on another's
# call, so its own option is the worker's to choose; the contact is shown as sent)
MAPPINGS = {
    (SCREENING, "referral_source"): {
        "contact_centre": "Customer Service Centre", "hospital": "GP or health professional",
        "adult_care": "LCC Adult Care practitioner", "health": "GP or health professional", "self": "Self",
        "family": "Family or friend", "agency": "Other agency"},
    ("Adult Contact", "contact_source"): {
        "contact_centre": None, "hospital": "Hospital", "adult_care": "Other", "health": "GP or health professional",
        "self": "Self", "family": "Family or friend", "agency": "Other agency"},
}
# a referral each kind is read from, as an upstream system sends it (intake contract: `source`, `referrer`)
SAYS = {
    "contact_centre": {"source": "csc-contact-centre"},
    "hospital": {"source": "uhl-patient-flow", "referrer": {"role": "Ward sister"}},
    "adult_care": {"source": "mosaic-adults"},
    "health": {"source": "emis", "referrer": {"role": "District nurse", "organisation": "LOROS Hospice"}},
    "self": {"source": "online-form", "referrer": {"role": "The person themselves"}},
    "family": {"source": "online-form", "referrer": {"name": "Jo", "role": "Unpaid carer"}},
    "agency": {"source": "niche-rms", "referrer": {"role": "Police officer"}},
}


@pytest.mark.parametrize(("step_type", "key", "kind"), [
    (step_type, key, kind) for (step_type, key) in MAPPINGS for kind in REFERRED_BY])
def test_R_W5_each_kind_of_referrer_prefills_its_option_of_each_first_step(step_type: str, key: str, kind: str):
    assert referred_by(SAYS[kind]) == kind
    assert prefilled(SAYS[kind], step_type, key) == MAPPINGS[(step_type, key)][kind]


@pytest.mark.parametrize(("referrer", "kind"), [
    ({"organisation": "LCC Housing Options"}, "agency"),  # the council, not adult care
    ({"organisation": "LCC Adult Social Care", "role": "Occupational therapist"}, "adult_care"),
    ({"organisation": "Leicestershire Fire and Rescue"}, "agency"),
    ({"name": "Edward Smith"}, None),  # a name is no kind ("ward" is a whole word)
    ({"role": "Next of kin"}, "family"),
])
def test_R_W5_words_say_a_kind_only_where_they_mean_it(referrer: dict[str, Any], kind: str | None) -> None:
    assert referred_by({"source": "partner-portal", "referrer": referrer}) == kind


def test_R_W5_what_no_option_says_is_shown_as_sent_beside_it() -> None:
    sent = {"source": "csc-contact-centre", "referrer": {"name": "Sam Caller", "organisation": "Customer Service"
                                                        " Centre", "role": "advisor", "phone": "0116 496 0001"}}
    assert prefilled(sent, "Adult Contact", "contact_source") is None
    assert prefilled(sent, "Adult Contact", "contact_sent_by") == (
        "csc-contact-centre: Sam Caller, advisor, Customer Service Centre")
    assert prefilled({"source": "another-system", "referrer": {"name": "Pat"}}, SCREENING,
                     "referral_sent_by") == "another-system: Pat"
    assert prefilled({"source": None}, SCREENING, "referral_sent_by") is None


def test_R_W5_every_step_prefilling_who_referred_also_shows_who_sent_it() -> None:
    packs = Engine().packs
    assert {(t, f.key) for t in packs.step_types() for s in packs.step(t).form_sections for f in s.fields
            if f.prepopulate_from == "referral.referred_by"} == set(MAPPINGS)  # each is checked kind by kind above
    for step_type in packs.step_types():
        for section in packs.step(step_type).form_sections:
            reads = {f.prepopulate_from for f in section.fields}
            assert "referral.referred_by" not in reads or "referral.sent_by" in reads, (step_type, section.title)
