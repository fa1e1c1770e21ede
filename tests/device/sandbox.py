"""A sandbox meter and a command builder for the rule tests (minted with openecos.smki)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from openecos.device import (
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TRANSITIONAL_COS_CELL,
    DeviceKey,
    MeterProfile,
    MeterState,
    commission_sandbox_meter,
    sandbox_profile,
)
from openecos.eui import Eui64
from openecos.gbcs import (
    AuthorisingRemotePartyControl,
    RemotePartySeqNumberChange,
    SpecialistSeqNumber,
    TrustAnchorCellIdentifier,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsCommand,
    build_command,
)
from openecos.gbcs.codes import (
    CredentialsReplacementMode,
    KeyUsage,
    RemotePartyRole,
    SeqNumberUsage,
)
from openecos.smki import TestPki, sandbox_pki
from openecos.smki.sandbox import TCOS_PARTY

DEVICE = Eui64.parse("00DB000000000001")
OTHER_DEVICE = Eui64.parse("00DB000000000002")
NOW = datetime(2026, 1, 1, tzinfo=UTC)
MODE_7 = CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS
MODE_6 = CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS
SUPPLIER_CELLS = (SUPPLIER_DS_CELL, SUPPLIER_KA_CELL, SUPPLIER_KA_TOP_UP_CELL)
SUPPLIER_FLOORS = (
    RemotePartySeqNumberChange(
        RemotePartyRole.SUPPLIER, 0, (SpecialistSeqNumber(SeqNumberUsage.PREPAYMENT_TOP_UP, 0),)
    ),
)


@cache
def pki() -> TestPki:
    return sandbox_pki()


@dataclass(frozen=True)
class Sandbox:
    pki: TestPki
    profile: MeterProfile
    meter: MeterState

    def key(self, name: str) -> DeviceKey:
        return DeviceKey(self.pki.entry(name).private_key())

    def der(self, name: str) -> bytes:
        return self.pki.entry(name).certificate.der

    def supplier_b(self) -> tuple[TrustAnchorReplacement, ...]:
        names = ("supplier-b-ds", "supplier-b-ka", "supplier-b-ka-topup")
        return tuple(
            TrustAnchorReplacement(self.der(n), c)
            for n, c in zip(names, SUPPLIER_CELLS, strict=True)
        )

    def command(
        self,
        replacements: tuple[TrustAnchorReplacement, ...] | None = None,
        *,
        seq: int = 100,
        mode: CredentialsReplacementMode = MODE_7,
        message_code: int | None = None,
        authorising_cell: TrustAnchorCellIdentifier | None = TRANSITIONAL_COS_CELL,
        signer: str | None = "tcos-ds",
        originator: Eui64 = TCOS_PARTY,
        recipient: Eui64 = DEVICE,
        mac_key: str | None = "acb-ka",
        mac_device: Eui64 | None = None,
        execution: datetime | None = None,
        path: tuple[bytes, ...] | None = None,
        apply_time_checks: bool = True,
        floors: tuple[RemotePartySeqNumberChange, ...] | None = SUPPLIER_FLOORS,
        new_floor: int | None = None,
    ) -> bytes:
        content = UpdateSecurityCredentialsCommand(
            AuthorisingRemotePartyControl(
                credentials_replacement_mode=mode,
                authorising_remote_party_seq_number=seq,
                authorising_remote_party_ta_cell=authorising_cell,
                apply_time_based_cpv_checks=apply_time_checks,
                new_remote_party_floor_seq_number=new_floor,
                other_remote_party_seq_number_changes=floors,
            ),
            self.supplier_b() if replacements is None else replacements,
            tuple(c.der for c in self.pki.organisation_path) if path is None else path,
            execution,
        )
        device_ka = self.profile.keys.public_key(  # type: ignore[attr-defined]
            mac_device or recipient, KeyUsage.KEY_AGREEMENT
        )
        return build_command(
            originator=originator,
            recipient=recipient,
            originator_counter=seq,
            message_code=mode.message_code if message_code is None else message_code,
            content=content,
            signer=None if signer is None else self.key(signer),
            key_agreement=None if mac_key is None else self.key(mac_key),
            recipient_key_agreement_key=device_ka,
        )


def sandbox() -> Sandbox:
    the_pki = pki()
    profile = sandbox_profile(the_pki)
    return Sandbox(the_pki, profile, commission_sandbox_meter(the_pki, DEVICE, profile))
