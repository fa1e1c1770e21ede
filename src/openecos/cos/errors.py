"""The errors of the ``cos`` part: one family under :class:`CosError`.

- :class:`CosRejected` is the answer to a 6.23 that fails a check: it names
  the check (:class:`~openecos.cos.checks.CosCheck`) and carries the DUIS
  response code to answer with, taken from the one table
  :data:`~openecos.cos.checks.CHECK_RESPONSE_CODES`.
- :class:`IllegalTransition` is a request lifecycle event the state does not
  allow (:mod:`openecos.cos.lifecycle`).
- :class:`DeviceMessageRefused` is a device response or alert that cannot be
  read, matched or believed; ``problem`` names why.
- :class:`NotQuarantined` is an operator release of a quarantine event that
  does not exist (:mod:`openecos.cos.tad`).
- :class:`InvalidCounter` is an originator counter outside GBCS's range.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from openecos.duis.codes import ResponseCode
from openecos.errors import OpenEcosError

if TYPE_CHECKING:
    from openecos.cos.checks import CosCheck
    from openecos.store.enums import RequestStatus


class CosError(OpenEcosError):
    """Base of the errors raised by ``openecos.cos``."""


class CosRejected(CosError):
    """A 6.23 failed ``check``; answer the requester with ``response_code``."""

    def __init__(self, check: CosCheck, response_code: ResponseCode, detail: str) -> None:
        super().__init__(f"{check.value}: {detail} [{response_code.value}]")
        self.check = check
        self.response_code = response_code
        self.detail = detail


class IllegalTransition(CosError):
    """A lifecycle event that is not allowed in the request's current state."""

    def __init__(self, status: RequestStatus, event: str) -> None:
        super().__init__(f"event {event!r} is not allowed in state {status.value}")
        self.status = status
        self.event = event


class DeviceMessageProblem(StrEnum):
    """Why a device response or alert was refused."""

    UNDECODABLE = "not a decodable GBCS frame or CS02b content"
    NOT_FROM_DEVICE = "not a response or alert"
    WRONG_MESSAGE_CODE = "not a 6.23 response (0x0107) or 0x00CB alert"
    UNKNOWN_RECIPIENT = "not addressed to a CoS Party"
    WRONG_DEVICE = "not from the device the command was sent to"
    WRONG_CERTIFICATE = "the certificate is not the device's digital-signing certificate"
    SIGNATURE_INVALID = "the device's signature does not verify"
    COMMAND_MISMATCH = "does not answer this command"
    OUTCOME_INCONSISTENT = "the execution outcome contradicts the command"


class DeviceMessageRefused(CosError):
    """A device message that cannot be read, matched or believed."""

    def __init__(self, problem: DeviceMessageProblem, detail: str) -> None:
        super().__init__(f"{problem.value}: {detail}")
        self.problem = problem
        self.detail = detail


class NotQuarantined(CosError):
    """An operator release of a quarantine event reference that is not held."""


class InvalidCounter(CosError, ValueError):
    """An originator counter outside 1..2^64-1."""
