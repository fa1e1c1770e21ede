"""The errors of the ``migration`` part: one family under :class:`MigrationError`.

- :class:`IllegalTransition`: an event a table does not allow in the current
  state (regime, run control, per-meter lifecycle); names the table, the state
  and the event.
- :class:`RegimeChangeRefused`: a regime change without the approvals or the
  readiness it needs; ``reason`` says which (:class:`RegimeChangeProblem`).
- :class:`UpdateRefused`: a 6.23 the regime does not let the DCC process for
  this meter; carries the DUIS response code to answer with and whether the
  meter must be raised as an exception for recovery.
- :class:`InvalidMigrationInput`: a value the caller built wrongly (a negative
  limit, a naive datetime, a counter out of range); also a ``ValueError``.
- :class:`ReportInconsistent`: EMRR figures that do not add up to the estate.
- :class:`CredentialsUnreadable`: a CS02a response that cannot be read or
  believed (the lifecycle treats it as "read again").
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from openecos.errors import OpenEcosError

if TYPE_CHECKING:
    from openecos.duis.codes import ResponseCode


class MigrationError(OpenEcosError):
    """Base of the errors raised by ``openecos.migration``."""


class IllegalTransition(MigrationError):
    """An event that ``table`` does not allow in ``state``."""

    def __init__(self, table: str, state: str, event: str) -> None:
        super().__init__(f"{table}: event {event!r} is not allowed in state {state!r}")
        self.table = table
        self.state = state
        self.event = event


class RegimeChangeProblem(StrEnum):
    """Why a regime change was refused."""

    NOT_ALLOWED = "the regime table has no such change"
    APPROVALS_MISSING = "not enough distinct approvers"
    APPROVAL_INVALID = "an approval is for another change, or later than the change"
    READINESS_MISSING = "the change needs a readiness check and none was given"
    READINESS_NOT_MET = "a readiness criterion is not met or has no evidence"


class RegimeChangeRefused(MigrationError):
    """A regime change refused for ``problem``; ``detail`` names what is missing."""

    def __init__(self, problem: RegimeChangeProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


class UpdateRefused(MigrationError):
    """A 6.23 the current regime refuses; answer ``response_code``.

    ``raise_exception`` is true when the meter must also go to the exceptions
    queue for recovery (a meter stranded on TCoS after TCoS was retired).
    """

    def __init__(self, reason: str, response_code: ResponseCode, raise_exception: bool) -> None:
        super().__init__(f"{reason} [{response_code.value}]")
        self.reason = reason
        self.response_code = response_code
        self.raise_exception = raise_exception


class InvalidMigrationInput(MigrationError, ValueError):
    """A value given to the migration layer that breaks its stated contract."""


class ReportInconsistent(MigrationError):
    """EMRR categories that do not add up to the estate."""


class CredentialsUnreadable(MigrationError):
    """A CS02a response that cannot be decoded, matched or believed."""
