"""Shared values for the migration tests: a sandbox meter, the parties and times."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.device import (
    DeviceKey,
    MeterProfile,
    MeterState,
    commission_sandbox_meter,
    handle,
    sandbox_profile,
)
from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.migration import (
    AnchorIdentity,
    EcosCredential,
    MigrationCommandConfig,
    SentMigration,
    build_credentials_read,
    build_migration_command,
)
from openecos.smki import SmkiCertificate, TestPki, sandbox_pki
from openecos.smki.sandbox import ACCESS_CONTROL_BROKER, TCOS_PARTY

DEVICE = Eui64.parse("00DB000000000001")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


@cache
def pki() -> TestPki:
    return sandbox_pki()


def der(name: str) -> bytes:
    return pki().entry(name).certificate.der


def key(name: str) -> DeviceKey:
    return DeviceKey(pki().entry(name).private_key())


def identity(name: str) -> AnchorIdentity:
    return AnchorIdentity.of(SmkiCertificate.from_der(der(name)))


def ecos_credential() -> EcosCredential:
    return EcosCredential.from_der(der("ecos-ds"), tuple(c.der for c in pki().organisation_path))


@dataclass
class Meter:
    """A sandbox meter and its profile; ``send`` delivers bytes and keeps the new state."""

    profile: MeterProfile
    state: MeterState

    def device_ka(self) -> ec.EllipticCurvePublicKey:
        return self.profile.keys.public_key(DEVICE, KeyUsage.KEY_AGREEMENT)  # type: ignore[attr-defined,no-any-return]

    def device_ds(self) -> ec.EllipticCurvePublicKey:
        return self.profile.keys.public_key(DEVICE, KeyUsage.DIGITAL_SIGNATURE)  # type: ignore[attr-defined,no-any-return]

    def send(self, message: bytes, *, busy: bool = False) -> bytes | None:
        transition = handle(self.state, message, NOW, self.profile, busy=busy)
        self.state = transition.state
        return transition.outputs[0].message if transition.outputs else None

    def migration_command(
        self,
        *,
        counter: int = 6000,
        floor: int = 0,
        credential: EcosCredential | None = None,
        config: MigrationCommandConfig | None = None,
    ) -> bytes:
        return build_migration_command(
            credential or ecos_credential(),
            tcos=TCOS_PARTY,
            device=DEVICE,
            originator_counter=counter,
            ecos_counter_floor=floor,
            signer=key("tcos-ds"),
            acb_key_agreement=key("acb-ka"),
            device_key_agreement_key=self.device_ka(),
            config=config,
        )

    def credentials_read(self, counter: int = 1300) -> bytes:
        return build_credentials_read(
            acb=ACCESS_CONTROL_BROKER,
            device=DEVICE,
            originator_counter=counter,
            acb_key_agreement=key("acb-ka"),
            device_key_agreement_key=self.device_ka(),
        )


def meter() -> Meter:
    profile = sandbox_profile(pki())
    return Meter(profile, commission_sandbox_meter(pki(), DEVICE, profile))


def sent(counter: int = 6000) -> SentMigration:
    return SentMigration(DEVICE, TCOS_PARTY, counter, identity("ecos-ds"))
