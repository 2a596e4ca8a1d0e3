"""Who may open a person's record without giving a reason (R-P5 access): the rules live in shared/access.py,
where the referrals service checks person-level commands by the same rules (issue #11 §3)."""

from shared.access import OPEN_OR_FUTURE_STATES, step_is_mine, why_allowed

__all__ = ["OPEN_OR_FUTURE_STATES", "step_is_mine", "why_allowed"]
