"""Issue #22 §7, R-W5: a prepopulated select maps the referral's source system to the option it means
(`prepopulate_values`); an unmapped source leaves it empty; a map to a value that is not an option is refused."""

from pathlib import Path

import pytest

from services.workflow import domain
from services.workflow.pack import PackError, load_packs
from tests.workflow_harness import Engine

SCREENING = "WB Wellbeing Screening"


def source_of(system: str | None) -> object:
    defn = Engine().packs.step(SCREENING)
    person = {"referral": domain.referral_values({"source": system})}
    return domain.prepopulated(defn, person, cogs=frozenset({"yellow"}))["referral_source"]


def test_R_W5_the_referral_source_becomes_the_option_it_means() -> None:
    assert source_of("csc-contact-centre") == "Customer Service Centre"
    assert source_of("another-system") is None
    assert source_of(None) is None


def test_R_W5_a_source_mapped_to_no_option_is_refused(tmp_path: Path) -> None:
    for pack in Path("services/workflow/definitions").glob("*.yaml"):
        text = pack.read_text().replace("csc-contact-centre: Customer Service Centre", "csc-contact-centre: CSC")
        (tmp_path / pack.name).write_text(text)
    with pytest.raises(PackError, match="prepopulate_values"):
        load_packs(tmp_path)
