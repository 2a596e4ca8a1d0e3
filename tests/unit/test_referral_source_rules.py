"""Issue #22 §7, R-W5: a prepopulated select takes the option the referral means (`prepopulate_values`): who
referred, read from the referral's category, sending system, and the referrer's role and organisation; a referral
that says nothing of it leaves the field empty; a map to a value that is not an option is refused."""

from pathlib import Path
from typing import Any

import pytest

from services.workflow import domain
from services.workflow.domain.intake import REFERRED_BY
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
