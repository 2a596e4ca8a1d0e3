"""Issue #22 §9: which sections of a step a worker may write now (`domain.writable_sections`, what `GET /steps/{id}`
says), by the save's own rules: the step's worker, a contributor's own fields (R-W10), nobody on a finished step."""

from services.workflow import domain
from services.workflow.pack import PackRegistry

CFA = "Child and Family Assessment and Plan"
PF = "Private Fostering Assessment"


def _cfa(state: str = "incomplete") -> domain.Step:
    return domain.Step("s", "w", "p", CFA, 1, state, "worker", "lsw", "normal", None, "lsw", {},  # type: ignore[arg-type]
                       forms=(PF,))


def _written(shipped: PackRegistry, step: domain.Step, *roles: str) -> set[str]:
    actor = domain.Actor("someone" if "locality_social_worker" not in roles else "lsw", frozenset(roles))
    return {key for key, yes in domain.writable_sections(step, shipped.step(CFA), [], frozenset(), actor).items()
            if yes}


def test_issue_22_R_W10_the_family_placement_contributor_may_write_only_their_private_fostering_sections(
        shipped: PackRegistry) -> None:
    """The FPT social worker is a Social Worker too, but on the assessment they contribute to they write only the
    Private Fostering sections of their role; the assessment's own worker writes its own form."""
    contributed = _written(shipped, _cfa(), "fpt_social_worker")
    assert contributed == {f"{PF}#3", f"{PF}#4"}
    own = {str(s.number) for s in shipped.step(CFA).form_sections}
    # the Private Fostering sections of the FPT social worker's role are theirs, not the assessment's worker's
    assert _written(shipped, _cfa(), "locality_social_worker") == own | {f"{PF}#{n}" for n in (1, 2, 5)}


def test_issue_22_nobody_may_write_a_finished_step_and_a_stranger_nothing(shipped: PackRegistry) -> None:
    assert _written(shipped, _cfa("finished"), "locality_social_worker") == set()
    assert _written(shipped, _cfa(), "gso") == set()
