"""What a sandbox holds, decided before anything is written: participants and meters.

Theory of operation: pure. :data:`SANDBOX_PARTICIPANTS` is the one table of
parties, their DUIS user IDs (each tied to the ``openecos.smki.SANDBOX_PARTIES``
certificates of its entity ID by ``pki_prefix``) and their MPIDs.
Supplier A is the "split supplier" (ecos-domain.md §S): two user IDs, one per
market role, each with its own MPID and certificates. :func:`plan_estate`
draws the meters from a seeded ``random.Random``, so the same seed gives the
same estate: EUIs, device types, MPxNs, registered suppliers, manufacturers
and which meters hold the ECoS Party's certificate in their transitionalCoS
cell. Nothing here touches a file or a clock.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from openecos.eui import Eui64
from openecos.smki.sandbox import (
    ACCESS_CONTROL_BROKER,
    ECOS_PARTY,
    NETWORK_OPERATOR,
    SUPPLIER_A,
    SUPPLIER_A_SECOND,
    SUPPLIER_B,
    TCOS_PARTY,
)
from openecos.store.enums import CosCredentialState, DeviceType, UserRole

IS, GS = UserRole.IMPORT_SUPPLIER, UserRole.GAS_SUPPLIER

#: Sandbox meters are numbered from here (the RTDS meter is 00-DB-12-34-56-78-90-A0).
FIRST_METER = Eui64.parse("00DB120000000001")
#: The share of meters that are electricity meters (ESME); the rest are GSME.
ELECTRICITY_SHARE = 0.55
#: The share of meters registered to supplier A; the rest to supplier B.
SUPPLIER_A_SHARE = 0.6

# MPAN check digit (the 13th digit): the first 12 digits weighted by these
# primes, summed, mod 11, mod 10 (the Master Registration Agreement rule).
_MPAN_WEIGHTS = (3, 5, 7, 13, 17, 19, 23, 29, 31, 37, 41, 43)
# Electricity distributor IDs (the first two digits of an MPAN): 10..23 are the GB DNO areas.
_DISTRIBUTORS = tuple(range(10, 24))


@dataclass(frozen=True, slots=True)
class SandboxUser:
    """A DUIS user ID, the roles it acts in, and the PKI entries of its certificates.

    ``pki_prefix`` names the certificates: ``<prefix>-ds``, ``-ka``,
    ``-ka-topup`` (suppliers) and ``-xml-sign`` (XML signing).
    """

    user_id: Eui64
    roles: frozenset[UserRole]
    pki_prefix: str

    @property
    def xml_signing_key(self) -> str:
        return f"{self.pki_prefix}-xml-sign"


@dataclass(frozen=True, slots=True)
class SandboxMpid:
    mpid: str
    user_id: Eui64
    role: UserRole


@dataclass(frozen=True, slots=True)
class SandboxParty:
    party_id: str
    name: str
    users: tuple[SandboxUser, ...]
    mpids: tuple[SandboxMpid, ...] = ()

    def user(self, user_id: Eui64) -> SandboxUser:
        for user in self.users:
            if user.user_id == user_id:
                return user
        raise KeyError(user_id)

    def mpid_for(self, role: UserRole) -> SandboxMpid | None:
        """The party's first MPID of a market role (IS for MPANs, GS for MPRNs)."""
        return next((m for m in self.mpids if m.role is role), None)


SANDBOX_PARTICIPANTS: tuple[SandboxParty, ...] = (
    SandboxParty(
        "SUPPLIER-A",
        "OpenECoS Supplier A",
        (
            SandboxUser(SUPPLIER_A, frozenset({IS}), "supplier-a"),
            SandboxUser(SUPPLIER_A_SECOND, frozenset({GS}), "supplier-a2"),
        ),
        (SandboxMpid("OEAE", SUPPLIER_A, IS), SandboxMpid("OEAG", SUPPLIER_A_SECOND, GS)),
    ),
    SandboxParty(
        "SUPPLIER-B",
        "OpenECoS Supplier B",
        (SandboxUser(SUPPLIER_B, frozenset({IS, GS}), "supplier-b"),),
        (SandboxMpid("OEBE", SUPPLIER_B, IS), SandboxMpid("OEBG", SUPPLIER_B, GS)),
    ),
    SandboxParty(
        "NETWORK-OPERATOR",
        "OpenECoS Network Operator",
        (
            SandboxUser(
                NETWORK_OPERATOR,
                frozenset({UserRole.ELECTRICITY_DISTRIBUTOR, UserRole.GAS_TRANSPORTER}),
                "network-operator",
            ),
        ),
    ),
    # The DCC signs responses and alerts as the ACB entity (dcc-xml-sign, role 0x89).
    SandboxParty(
        "DCC",
        "Data Communications Company (sandbox)",
        (SandboxUser(ACCESS_CONTROL_BROKER, frozenset({UserRole.OTHER_USER}), "dcc"),),
    ),
)


@dataclass(frozen=True, slots=True)
class DccIdentities:
    """The DCC-side entities and the PKI entries of their keys."""

    access_control_broker: Eui64 = ACCESS_CONTROL_BROKER
    tcos_party: Eui64 = TCOS_PARTY
    ecos_party: Eui64 = ECOS_PARTY
    acb_ds: str = "acb-ds"
    acb_ka: str = "acb-ka"
    tcos_ds: str = "tcos-ds"
    ecos_ds: str = "ecos-ds"
    xml_signing: str = "dcc-xml-sign"

    def transitional_cos_entry(self, state: CosCredentialState) -> str:
        """The certificate a meter's transitionalCoS cell holds in ``state``."""
        return self.ecos_ds if state is CosCredentialState.ECOS else self.tcos_ds


@dataclass(frozen=True, slots=True)
class MeterModel:
    manufacturer: str
    model: str
    firmware_version: str


#: Makes and models the sandbox draws from (DUIS lengths: 30, 30 and 8 characters).
METER_MODELS: dict[DeviceType, tuple[MeterModel, ...]] = {
    DeviceType.ESME: (
        MeterModel("OpenECoS Meters Ltd", "OE-ESME-1", "01020304"),
        MeterModel("Sandbox Metering plc", "SB-E2", "0205"),
    ),
    DeviceType.GSME: (
        MeterModel("OpenECoS Meters Ltd", "OE-GSME-1", "01000002"),
        MeterModel("Sandbox Metering plc", "SB-G1", "0101"),
    ),
}


@dataclass(frozen=True, slots=True)
class PlannedMeter:
    """One meter of the estate as the sandbox creates it (Commissioned)."""

    eui: Eui64
    device_type: DeviceType
    mpxn: str
    supplier_mpid: str
    supplier: SandboxUser
    credential_state: CosCredentialState
    model: MeterModel


def mpan_check_digit(first_twelve: str) -> int:
    """The 13th digit of an MPAN core for its first twelve digits."""
    if len(first_twelve) != 12 or not first_twelve.isdigit():
        raise ValueError(f"an MPAN check digit needs twelve digits, got {first_twelve!r}")
    total = sum(int(d) * w for d, w in zip(first_twelve, _MPAN_WEIGHTS, strict=True))
    return total % 11 % 10


def is_valid_mpan(mpan: str) -> bool:
    return len(mpan) == 13 and mpan.isdigit() and mpan_check_digit(mpan[:12]) == int(mpan[12])


def _mpan(rng: random.Random) -> str:
    first = f"{rng.choice(_DISTRIBUTORS):02d}{rng.randrange(10**10):010d}"
    return first + str(mpan_check_digit(first))


def _mprn(rng: random.Random) -> str:
    return str(rng.randrange(10**9, 10**10))  # ten digits, no leading zero


def supplier_users() -> dict[str, SandboxUser]:
    """MPID -> the user ID that holds it, for every supplier MPID."""
    users = {u.user_id: u for p in SANDBOX_PARTICIPANTS for u in p.users}
    return {m.mpid: users[m.user_id] for p in SANDBOX_PARTICIPANTS for m in p.mpids}


def plan_estate(meters: int, *, ecos_fraction: float, seed: int) -> tuple[PlannedMeter, ...]:
    """``meters`` commissioned meters drawn from ``seed`` (see the module docstring)."""
    if meters < 0:
        raise ValueError("the number of meters cannot be negative")
    if not 0.0 <= ecos_fraction <= 1.0:
        raise ValueError(f"ecos_fraction must be within 0..1, got {ecos_fraction}")
    rng = random.Random(seed)
    holders = supplier_users()
    a, b = SANDBOX_PARTICIPANTS[0], SANDBOX_PARTICIPANTS[1]
    ecos = set(rng.sample(range(meters), round(meters * ecos_fraction)))
    taken: set[str] = set()
    planned = []
    for n in range(meters):
        electric = rng.random() < ELECTRICITY_SHARE
        device_type = DeviceType.ESME if electric else DeviceType.GSME
        role = IS if electric else GS
        party = a if rng.random() < SUPPLIER_A_SHARE else b
        mpid = party.mpid_for(role)
        assert mpid is not None  # both suppliers hold an MPID of each role
        mpxn = _mpan(rng) if electric else _mprn(rng)
        while mpxn in taken:
            mpxn = _mpan(rng) if electric else _mprn(rng)
        taken.add(mpxn)
        planned.append(
            PlannedMeter(
                eui=Eui64.from_int(int(FIRST_METER) + n),
                device_type=device_type,
                mpxn=mpxn,
                supplier_mpid=mpid.mpid,
                supplier=holders[mpid.mpid],
                credential_state=CosCredentialState.ECOS if n in ecos else CosCredentialState.TCOS,
                model=rng.choice(METER_MODELS[device_type]),
            )
        )
    return tuple(planned)
