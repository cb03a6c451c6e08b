"""The six authority modes, ordered from least to most restrictive."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["Mode"]


class Mode(StrEnum):
    """What a tool call may do.

    The order of declaration is the order of strictness: a policy rule may move a call to a
    later mode, never to an earlier one.
    """

    READ_ONLY = "read_only"
    """Runs; its result is filtered to the fields the policy lets the model see."""
    EXECUTE_LIMITED = "execute_limited"
    """Runs without a person, inside its limits; outside them it becomes stricter."""
    EXECUTE_GATED = "execute_gated"
    """Runs only after the required customer verification and/or staff approval."""
    DRAFT_ONLY = "draft_only"
    """Prepares its payload as a draft; nothing is sent or executed."""
    RECOMMEND_ONLY = "recommend_only"
    """Does not run; a recommendation is recorded and returned."""
    ESCALATE = "escalate"
    """Does not run; the run stops and the case goes to a person."""

    @property
    def rank(self) -> int:
        """Position in the strictness order (0 is the least strict)."""
        return _RANK[self]

    @property
    def executes(self) -> bool:
        """Whether a call in this mode runs the tool."""
        return self in (Mode.READ_ONLY, Mode.EXECUTE_LIMITED, Mode.EXECUTE_GATED)

    def stricter(self, other: Mode) -> Mode:
        """The stricter of the two modes."""
        return self if self.rank >= other.rank else other


_RANK = {mode: i for i, mode in enumerate(Mode)}
