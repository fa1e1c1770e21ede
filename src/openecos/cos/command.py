"""The CS02b 0x0107 "supplierByTransCoS" command for a checked 6.23, as RTDS builds it.

Theory of operation. :func:`build_supplier_by_trans_cos` maps a
:class:`~openecos.cos.checks.CheckedRequest` onto the GBCS content
(docs/gbcs-cs02b.md §9, §5.1):

- mode 7; authorising cell (transitionalCoS, digitalSignature); the
  authorising seq number is the originator counter the service reserved
  durably beforehand (the two must be equal, §A3);
- ``[1]`` applyTimeBasedCPVChecks present (disapply) only when the request's
  ``ApplyTimeBasedCPVChecks`` is false;
- ``[6]`` {supplier, SupplierFloorSeqNumber, [(prePaymentTopUp,
  SupplierPrepaymentTopUpFloorSeqNumber)]}, omitted for a cancellation (RTDS
  omits it there);
- replacements DS, KA, KA top-up; the certification path as given;
- executionDateTime for future-dated, ``99991231235959Z`` for cancellation.

:func:`build_cos_command` then makes the bytes that go to the meter: the
General-Signing APDU from the CoS Party, signed with its key, MACed with the
ACB's key-agreement key (:func:`openecos.gbcs.build_command`). Both take the
counter as input; nothing here reserves or stores anything.
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric import ec

from openecos.cos.checks import CheckedRequest
from openecos.cos.errors import InvalidCounter
from openecos.cos.routing import CosParty
from openecos.duis.request import ExecutionKind
from openecos.gbcs import build_command
from openecos.gbcs.codes import (
    CredentialsReplacementMode,
    KeyUsage,
    MessageCode,
    RemotePartyRole,
    SeqNumberUsage,
)
from openecos.gbcs.cs02b import (
    AuthorisingRemotePartyControl,
    RemotePartySeqNumberChange,
    SpecialistSeqNumber,
    TrustAnchorCellIdentifier,
    UpdateSecurityCredentialsCommand,
)
from openecos.gbcs.security import DigestSigner, KeyAgreement

#: The cell whose key signs every 6.23 command (§A3: ``[2]`` = {5, digitalSignature}).
AUTHORISING_CELL = TrustAnchorCellIdentifier(
    RemotePartyRole.TRANSITIONAL_COS, KeyUsage.DIGITAL_SIGNATURE
)
MESSAGE_CODE = MessageCode.CS02B_SUPPLIER_BY_TRANS_COS
_U64_MAX = (1 << 64) - 1


def _check_counter(counter: int) -> None:
    if not isinstance(counter, int) or isinstance(counter, bool) or not 0 < counter <= _U64_MAX:
        raise InvalidCounter(f"originator counter {counter!r} is not in 1..2^64-1")


def build_supplier_by_trans_cos(
    checked: CheckedRequest, originator_counter: int
) -> UpdateSecurityCredentialsCommand:
    """The CS02b content for ``checked`` with seq number ``originator_counter``."""
    _check_counter(originator_counter)
    changes: tuple[RemotePartySeqNumberChange, ...] | None = None
    if checked.kind is not ExecutionKind.CANCELLATION:
        top_up = checked.supplier_prepayment_top_up_floor_seq_number
        specialist = (
            None
            if top_up is None
            else (SpecialistSeqNumber(SeqNumberUsage.PREPAYMENT_TOP_UP, top_up),)
        )
        # GBCS: a role changing another role's credentials sets that role's floors (§A3).
        changes = (
            RemotePartySeqNumberChange(
                RemotePartyRole.SUPPLIER, checked.supplier_floor_seq_number, specialist
            ),
        )
    control = AuthorisingRemotePartyControl(
        credentials_replacement_mode=CredentialsReplacementMode.SUPPLIER_BY_TRANS_COS,
        authorising_remote_party_seq_number=originator_counter,
        authorising_remote_party_ta_cell=AUTHORISING_CELL,
        apply_time_based_cpv_checks=checked.apply_time_based_cpv_checks,
        other_remote_party_seq_number_changes=changes,
    )
    return UpdateSecurityCredentialsCommand(
        authorising_remote_party_control=control,
        replacements=tuple(r.to_gbcs() for r in checked.replacements),
        certification_path=checked.certification_path,
        execution_date_time=checked.execution_date_time,
    )


def build_cos_command(
    checked: CheckedRequest,
    *,
    party: CosParty,
    originator_counter: int,
    signer: DigestSigner,
    acb_key_agreement: KeyAgreement,
    device_key_agreement_key: ec.EllipticCurvePublicKey,
) -> bytes:
    """The signed and MACed 0x0107 command from ``party`` to the meter (§A4).

    ``signer`` is ``party``'s transitionalCoS DS key handle, ``acb_key_agreement``
    the ACB's key-agreement handle and ``device_key_agreement_key`` the meter's
    KA public key (from its certificate in the inventory).
    """
    return build_command(
        originator=party.entity_eui,
        recipient=checked.device,
        originator_counter=originator_counter,
        message_code=MESSAGE_CODE,
        content=build_supplier_by_trans_cos(checked, originator_counter),
        signer=signer,
        key_agreement=acb_key_agreement,
        recipient_key_agreement_key=device_key_agreement_key,
    )
