"""Which meters may be migrated now, and why the others may not.

Theory of operation. A meter is eligible for a 0x0106 migration when all of
these hold (docs/ecos-domain.md §C1, shared/docs/architecture.md flow 2):

1. it is a device type that holds a transitionalCoS anchor (ESME and GSME
   by default, §C3);
2. it is Commissioned (DUIS ``DeviceStatus``);
3. it was not manufactured with the ECoS certificate (``born_ecos``) and its
   credential state is still TCoS;
4. no credential-changing command is in flight for it (a 6.23 sent or
   future-dated and pending, or a migration command): at most one at a time;
5. its manufacturer, model and firmware are on the approved list: the
   devices suppliers confirmed were tested with CoS certificate swapping
   (seed 002: DCC asks suppliers for the information it needs to plan).

:func:`assess` checks them in that order and returns an :class:`Eligibility`
naming *every* reason that applies; :attr:`Eligibility.reason` is the first,
which is the one EMRR counts, so each ineligible meter is counted once.
Reasons are *transient* (the meter may become eligible by itself: a command
in flight completes) or not (a change of data or approval list is needed).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from openecos.migration.errors import InvalidMigrationInput
from openecos.store.enums import CosCredentialState, DeviceStatus, DeviceType
from openecos.store.records import Device


class IneligibleReason(StrEnum):
    """Why a meter is not eligible for migration now (EMRR counts them by this)."""

    DEVICE_TYPE = "device type holds no transitionalCoS anchor to migrate"
    NOT_COMMISSIONED = "not commissioned"
    BORN_ECOS = "manufactured with the ECoS certificate"
    ALREADY_ECOS = "already on ECoS"
    COMMAND_IN_FLIGHT = "a credential-changing command is in flight"
    MODEL_NOT_APPROVED = "manufacturer and model not on the approved list"
    FIRMWARE_NOT_APPROVED = "firmware version not approved for this model"

    @property
    def transient(self) -> bool:
        """True when the reason clears by itself (no data or list change needed)."""
        return self is IneligibleReason.COMMAND_IN_FLIGHT


@dataclass(frozen=True, slots=True)
class ApprovedModel:
    """A device model approved for migration; ``firmware_versions`` empty means any firmware."""

    manufacturer: str
    model: str
    firmware_versions: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        if not self.manufacturer.strip() or not self.model.strip():
            raise InvalidMigrationInput("an approved model names its manufacturer and model")


def _key(manufacturer: str, model: str) -> tuple[str, str]:
    # DUIS DeviceManufacturer/DeviceModel are free text: compare without case or edge spaces.
    return manufacturer.strip().casefold(), model.strip().casefold()


@dataclass(frozen=True, slots=True)
class ApprovedModels:
    """The approved list (what DCC gathered from suppliers and device tests)."""

    models: tuple[ApprovedModel, ...] = ()
    _index: dict[tuple[str, str], ApprovedModel] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        index = {_key(m.manufacturer, m.model): m for m in self.models}
        if len(index) != len(self.models):
            raise InvalidMigrationInput("a model is listed twice on the approved list")
        # Looked up once per meter assessed: a dict, not a scan of the list.
        object.__setattr__(self, "_index", index)

    def lookup(self, manufacturer: str, model: str) -> ApprovedModel | None:
        return self._index.get(_key(manufacturer, model))


@dataclass(frozen=True, slots=True)
class EligibilityConfig:
    """The device types migration covers (ESME and GSME by default, §C3)."""

    device_types: frozenset[DeviceType] = frozenset({DeviceType.ESME, DeviceType.GSME})


@dataclass(frozen=True, slots=True)
class Eligibility:
    """The verdict for one meter: eligible, or every reason it is not (first is primary)."""

    reasons: tuple[IneligibleReason, ...] = ()

    @property
    def eligible(self) -> bool:
        return not self.reasons

    @property
    def reason(self) -> IneligibleReason | None:
        """The primary reason (the one EMRR counts), or ``None`` when eligible."""
        return self.reasons[0] if self.reasons else None


ELIGIBLE = Eligibility()


def assess(
    device: Device,
    *,
    command_in_flight: bool,
    approved: ApprovedModels,
    config: EligibilityConfig | None = None,
) -> Eligibility:
    """Checks the rules of the module docstring in order and names every failure."""
    config = config or EligibilityConfig()
    reasons: list[IneligibleReason] = []
    if device.device_type not in config.device_types:
        reasons.append(IneligibleReason.DEVICE_TYPE)
    if device.status is not DeviceStatus.COMMISSIONED:
        reasons.append(IneligibleReason.NOT_COMMISSIONED)
    if device.born_ecos:
        reasons.append(IneligibleReason.BORN_ECOS)
    elif device.credential_state is CosCredentialState.ECOS:
        reasons.append(IneligibleReason.ALREADY_ECOS)
    if command_in_flight:
        reasons.append(IneligibleReason.COMMAND_IN_FLIGHT)
    entry = approved.lookup(device.manufacturer, device.model)
    if entry is None:
        reasons.append(IneligibleReason.MODEL_NOT_APPROVED)
    elif entry.firmware_versions and device.firmware_version not in entry.firmware_versions:
        reasons.append(IneligibleReason.FIRMWARE_NOT_APPROVED)
    return Eligibility(tuple(reasons))


def count_by_reason(verdicts: Iterable[Eligibility]) -> Counter[IneligibleReason]:
    """Ineligible meters counted once each, by their primary reason."""
    return Counter(v.reason for v in verdicts if v.reason is not None)
