"""The CS02b 0x0106 "transCoSByTransCoS" migration command for one meter.

Theory of operation. Migration puts the ECoS Party's role-5 digital-signing
certificate into the meter's transitionalCoS DS cell, with a command signed by
the key that cell trusts today, the TCoS Party's (docs/ecos-domain.md §C1;
docs/gbcs-cs02b.md §5.2). :func:`build_trans_cos_by_trans_cos` makes the
content:

- mode 6; ``[2]`` authorising cell (transitionalCoS, digitalSignature);
- ``[3]`` seq number = the TCoS Party's originator counter, which the caller
  reserved durably before calling (RTDS keeps the two equal, §2.5);
- ``[1]`` applyTimeBasedCPVChecks present (disapply) only when configured
  (:attr:`MigrationCommandConfig.apply_time_based_cpv_checks` false), as RTDS
  does for this command;
- one replacement: the ECoS certificate to (transitionalCoS, DS); the
  certification path as given;
- ``[4]`` newRemotePartyFloorSeqNumber: **present by default**, set to the
  ECoS Party's counter high-water mark (``ecos_counter_floor``). Why: a meter
  keeps one seq number per remote-party role and refuses a command whose
  ``[3]`` does not exceed it (§8.4). Every accepted command stores its ``[3]``
  there, so after a 0x0106 without ``[4]`` the transitionalCoS seq number is
  the TCoS counter of the migration command (6000 in RTDS; in production a
  TCoS counter grown over millions of meters), and the ECoS Party, whose
  counter is its own, would be refused until its counter passed it: the
  simulator's author notes exactly this (device/machine.py: floors from
  ``[4]``/``[5]`` set the authorising role's own seq numbers, applied only when
  the replacement succeeds). ``[4]`` is GBCS's field for the *new* remote
  party's floor (§4, §8.4), so the meter starts the ECoS Party at its own
  counter. The high-water mark, rather than 0, is chosen so that an
  ECoS-signed command created before the migration (say a 6.23 misrouted
  while the meter was still on TCoS) can never be replayed into the meter
  afterwards; every counter the ECoS Party reserves later is above it. TCoS
  commands cannot be replayed either: the TCoS key is no longer trusted.
  ``MigrationCommandConfig(set_new_remote_party_floor=False)`` omits ``[4]``
  (RTDS's form); the ECoS Party must then start above the TCoS counter.

:func:`build_migration_command` makes the bytes: the General-Signing APDU
from the TCoS Party, signed with its key, MACed by the ACB
(:func:`openecos.gbcs.build_command`). Nothing here reserves counters.

:class:`MigrationCommandTemplate` makes the same bytes faster for an engine
that sends one 0x0106 per meter: the ECoS certificate, the certification path
and the fixed part of ``[0]`` are encoded once, so a command costs the
encoding of ``[3]``/``[4]``, the grouping header, the TCoS signature and the
ACB GMAC. It checks itself against :func:`build_migration_command` when made
(with deterministic stand-ins for the keys), so it cannot drift from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.eui import Eui64
from openecos.gbcs import GeneralSigningApdu, build_command
from openecos.gbcs.codes import (
    CraFlag,
    CredentialsReplacementMode,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
)
from openecos.gbcs.cs02b import (
    AuthorisingRemotePartyControl,
    TrustAnchorCellIdentifier,
    TrustAnchorReplacement,
    UpdateSecurityCredentialsCommand,
)
from openecos.gbcs.encode import encode_content
from openecos.gbcs.frame import encode_general_ciphering
from openecos.gbcs.security import DigestSigner, KeyAgreement, compute_mac, derive_mac_key
from openecos.gbcs.tlv import encode_length, read_tlv, unsigned
from openecos.migration.errors import InvalidMigrationInput
from openecos.smki import CertificateError, SmkiCertificate

#: The cell that authorises a 0x0106 and the one it replaces (§5.2, §8.4).
TRANSITIONAL_COS_CELL = TrustAnchorCellIdentifier(
    RemotePartyRole.TRANSITIONAL_COS, KeyUsage.DIGITAL_SIGNATURE
)
MESSAGE_CODE = MessageCode.CS02B_TRANS_COS_BY_TRANS_COS
_U64_MAX = (1 << 64) - 1


@dataclass(frozen=True, slots=True)
class AnchorIdentity:
    """What a meter reports of a cell's certificate: subject EUI and 8-byte SKI (§5.2)."""

    subject_unique_id: Eui64
    subject_key_id: bytes

    @classmethod
    def of(cls, certificate: SmkiCertificate) -> AnchorIdentity:
        eui, ski = certificate.eui, certificate.subject_key_identifier
        if eui is None or ski is None or len(ski) != 8:
            raise InvalidMigrationInput("the certificate has no subject EUI or 8-byte SKI")
        return cls(eui, ski)


@dataclass(frozen=True, slots=True)
class EcosCredential:
    """The ECoS Party's transitionalCoS DS certificate and its certification path (DER)."""

    certificate: bytes
    certification_path: tuple[bytes, ...]
    identity: AnchorIdentity

    @classmethod
    def from_der(cls, certificate: bytes, certification_path: tuple[bytes, ...]) -> EcosCredential:
        """Reads the certificate; refuses one that is not a role-5 DS organisation certificate."""
        try:
            parsed = SmkiCertificate.from_der(certificate)
        except CertificateError as exc:
            raise InvalidMigrationInput(f"the ECoS certificate cannot be read: {exc}") from exc
        if parsed.role is not RemotePartyRole.TRANSITIONAL_COS:
            raise InvalidMigrationInput("the ECoS certificate must have role 05 (transitionalCoS)")
        if parsed.key_usage is not KeyUsage.DIGITAL_SIGNATURE:
            raise InvalidMigrationInput("the ECoS certificate must be a digital-signing one")
        return cls(certificate, tuple(certification_path), AnchorIdentity.of(parsed))


@dataclass(frozen=True, slots=True)
class MigrationCommandConfig:
    """Choices in the 0x0106 content (see the module docstring)."""

    apply_time_based_cpv_checks: bool = True
    """False puts ``[1]`` = disapply in the command (RTDS does)."""
    set_new_remote_party_floor: bool = True
    """Put ``[4]`` = the ECoS Party's counter high-water mark in the command."""


def check_counter(name: str, counter: int, *, allow_zero: bool = False) -> int:
    low = 0 if allow_zero else 1
    if not isinstance(counter, int) or isinstance(counter, bool) or not low <= counter <= _U64_MAX:
        raise InvalidMigrationInput(f"{name} {counter!r} is not in {low}..2^64-1")
    return counter


def build_trans_cos_by_trans_cos(
    credential: EcosCredential,
    *,
    originator_counter: int,
    ecos_counter_floor: int,
    config: MigrationCommandConfig | None = None,
) -> UpdateSecurityCredentialsCommand:
    """The 0x0106 content: ``[3]`` = ``originator_counter``, ``[4]`` = ``ecos_counter_floor``.

    ``ecos_counter_floor`` is the highest originator counter the ECoS Party has
    reserved so far (0 if none); ignored when ``[4]`` is configured off.
    """
    config = config or MigrationCommandConfig()
    check_counter("originator counter", originator_counter)
    floor = check_counter("ECoS counter floor", ecos_counter_floor, allow_zero=True)
    control = AuthorisingRemotePartyControl(
        credentials_replacement_mode=CredentialsReplacementMode.TRANS_COS_BY_TRANS_COS,
        authorising_remote_party_seq_number=originator_counter,
        authorising_remote_party_ta_cell=TRANSITIONAL_COS_CELL,
        apply_time_based_cpv_checks=config.apply_time_based_cpv_checks,
        new_remote_party_floor_seq_number=floor if config.set_new_remote_party_floor else None,
    )
    return UpdateSecurityCredentialsCommand(
        authorising_remote_party_control=control,
        replacements=(TrustAnchorReplacement(credential.certificate, TRANSITIONAL_COS_CELL),),
        certification_path=credential.certification_path,
    )


def build_migration_command(
    credential: EcosCredential,
    *,
    tcos: Eui64,
    device: Eui64,
    originator_counter: int,
    ecos_counter_floor: int,
    signer: DigestSigner,
    acb_key_agreement: KeyAgreement,
    device_key_agreement_key: ec.EllipticCurvePublicKey,
    config: MigrationCommandConfig | None = None,
) -> bytes:
    """The signed and MACed 0x0106 from the TCoS Party (entity ``tcos``) to ``device``.

    ``signer`` is the TCoS Party's transitionalCoS DS key handle;
    ``acb_key_agreement`` the ACB's KA handle; ``device_key_agreement_key`` the
    meter's KA public key (from its certificate in the inventory).
    """
    content = build_trans_cos_by_trans_cos(
        credential,
        originator_counter=originator_counter,
        ecos_counter_floor=ecos_counter_floor,
        config=config,
    )
    return build_command(
        originator=tcos,
        recipient=device,
        originator_counter=originator_counter,
        message_code=MESSAGE_CODE,
        content=content,
        signer=signer,
        key_agreement=acb_key_agreement,
        recipient_key_agreement_key=device_key_agreement_key,
    )


_SEQUENCE = 0x30
_SIGNATURE_SIZE = 64


class MigrationCommandTemplate:
    """:func:`build_migration_command` for one credential and TCoS Party, encoded once.

    The content is ``SEQUENCE { [0] control, replacements, path }``; only the
    control's ``[3]`` (the counter) and ``[4]`` (the ECoS floor) change from
    meter to meter, so the control's fixed prefix and the replacements and path
    are kept as bytes and the rest is assembled around them (module docstring).
    """

    __slots__ = ("_config", "_control_prefix", "_credential", "_tail", "_tcos")

    def __init__(
        self,
        credential: EcosCredential,
        *,
        tcos: Eui64,
        config: MigrationCommandConfig | None = None,
    ) -> None:
        self._credential = credential
        self._tcos = tcos
        self._config = config or MigrationCommandConfig()
        reference = encode_content(
            build_trans_cos_by_trans_cos(
                credential, originator_counter=1, ecos_counter_floor=0, config=self._config
            )
        )
        start, end = read_tlv(reference, 0, len(reference), _SEQUENCE)
        control_start, control_end = read_tlv(reference, start, end, _SEQUENCE)
        control = reference[control_start:control_end]
        seq_at = control.index(unsigned(0x83, 1))  # [3] = 1 in the reference, then [4] at most
        self._control_prefix = control[:seq_at]
        self._tail = reference[control_end:end]
        self._check()

    def content(self, originator_counter: int, ecos_counter_floor: int) -> bytes:
        """The encoded 0x0106 content (as ``encode_content(build_trans_cos_by_trans_cos(...))``)."""
        check_counter("originator counter", originator_counter)
        floor = check_counter("ECoS counter floor", ecos_counter_floor, allow_zero=True)
        control = self._control_prefix + unsigned(0x83, originator_counter)
        if self._config.set_new_remote_party_floor:
            control += unsigned(0x84, floor)
        control = bytes((_SEQUENCE,)) + encode_length(len(control)) + control
        body = control + self._tail
        return bytes((_SEQUENCE,)) + encode_length(len(body)) + body

    def build(
        self,
        *,
        device: Eui64,
        originator_counter: int,
        ecos_counter_floor: int,
        signer: DigestSigner,
        acb_key_agreement: KeyAgreement,
        device_key_agreement_key: ec.EllipticCurvePublicKey,
    ) -> bytes:
        """The same bytes as :func:`build_migration_command` with the same arguments."""
        apdu = GeneralSigningApdu(
            cra_flag=CraFlag.COMMAND,
            originator_counter=originator_counter,
            originator=self._tcos,
            recipient=device,
            message_code=MESSAGE_CODE,
            content=self.content(originator_counter, ecos_counter_floor),
            signature=b"",
        )
        signed = apdu.signed_bytes()
        signature = signer.sign_digest(hashlib.sha256(signed).digest())
        if len(signature) != _SIGNATURE_SIZE:
            raise InvalidMigrationInput("the TCoS signer must return 64 bytes r‖s")
        encoded = b"\xdf" + signed + bytes((_SIGNATURE_SIZE,)) + bytes(signature)
        key = derive_mac_key(
            acb_key_agreement.exchange(device_key_agreement_key),
            originator=self._tcos,
            cra_flag=CraFlag.COMMAND,
            originator_counter=originator_counter,
            recipient=device,
        )
        return encode_general_ciphering(encoded, compute_mac(key, self._tcos, encoded))

    def _check(self) -> None:
        """Refuses to exist unless it reproduces :func:`build_migration_command` byte for byte."""
        peer = ec.derive_private_key(1, ec.SECP256R1()).public_key()
        device = Eui64.from_int(0x0123456789ABCDEF)
        signer, agreement = _FixedSigner(), _FixedAgreement()
        for counter, floor in ((1, 0), (0x7F, 0x80), ((1 << 64) - 1, (1 << 63) + 12345)):
            expected = build_migration_command(
                self._credential,
                tcos=self._tcos,
                device=device,
                originator_counter=counter,
                ecos_counter_floor=floor,
                signer=signer,
                acb_key_agreement=agreement,
                device_key_agreement_key=peer,
                config=self._config,
            )
            made = self.build(
                device=device,
                originator_counter=counter,
                ecos_counter_floor=floor,
                signer=signer,
                acb_key_agreement=agreement,
                device_key_agreement_key=peer,
            )
            if made != expected:
                raise InvalidMigrationInput("the 0x0106 template does not match the builder")


class _FixedSigner:
    def sign_digest(self, digest: bytes) -> bytes:
        return digest + digest


class _FixedAgreement:
    def exchange(self, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        return bytes(32)
