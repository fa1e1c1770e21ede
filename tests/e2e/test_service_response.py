"""The gaining supplier's service response: signed, schema-valid, the meter's own outcome.

DUIS V5.4's ``sr:ResponseMessage`` holds ONE of its payload choices, so the
service response carries the meter's answer as ``GBCSPayload`` (the GBCS
response, signed by the meter, with its ExecutionOutcome inside) and cannot
also hold MMC XML. The test proves the response validates against the DUIS
XSD, its signature verifies with the DCC's XML-signing certificate, the
payload is the meter's bytes exactly (and its signature verifies with the
meter's certificate), and the ExecutionOutcome matches what the meter now
holds. The MMC form, ``UpdateSecurityCredentialsCoSRsp`` with the same
ExecutionOutcome, comes from ``GET /api/requests/{id}/outcome`` and validates
against the same schema set.
"""

from __future__ import annotations

import base64
import hashlib

from openecos.device import SUPPLIER_DS_CELL, SUPPLIER_KA_CELL, SUPPLIER_KA_TOP_UP_CELL
from openecos.duis import DuisSchema, parse_document, verify_signature
from openecos.gbcs import decode_frame, decode_payload
from openecos.gbcs import verify_signature as verify_gbcs_signature
from openecos.gbcs.codes import KeyUsage, StatusCode
from openecos.gbcs.cs02b import UpdateSecurityCredentialsResponse
from openecos.service import ManualClock
from openecos.smki import SmkiCertificate
from openecos.smki.sandbox import SUPPLIER_A, SUPPLIER_B
from tests.e2e.world import NOW, build_request, next_counter
from tests.reference import reference_path
from tests.service.env import (
    TCOS_METER,
    Environment,
    gbcs_payload,
    pki,
    post,
    request_id,
    running_server,
    runtime_for,
    status_of,
    wait_until,
)

RA = "{http://www.dccinterface.co.uk/ResponseAndAlert}"
#: Each supplier cell: its MMC CertificateType and supplier A's certificate it held.
CELLS = {
    SUPPLIER_DS_CELL: ("DigitalSigning", "supplier-a-ds"),
    SUPPLIER_KA_CELL: ("KeyAgreement", "supplier-a-ka"),
    SUPPLIER_KA_TOP_UP_CELL: ("KeyAgreementTopUp", "supplier-a-ka-topup"),
}


def _dcc_certificate(issuer: str, serial: int) -> bytes | None:
    certificate = pki().entry("dcc-xml-sign").certificate
    return certificate.der if serial == certificate.serial else None


def test_the_service_response_is_signed_valid_and_carries_the_meters_outcome(
    env: Environment,
) -> None:
    schema = DuisSchema.load(reference_path("duis", "xsd"))
    runtime = runtime_for(env, ManualClock(NOW))
    with running_server(runtime) as client:
        counter = next_counter()
        rid = request_id(SUPPLIER_B, TCOS_METER, counter)
        assert client.get(f"/api/requests/{rid}/outcome").status_code == 404
        assert post(client, build_request(TCOS_METER, counter)) == "I99"
        wait_until(lambda: status_of(client, rid) == "Completed")
        messages = client.get(f"/users/{SUPPLIER_B.hex}/messages").json()
        (response,) = [m for m in messages if m["kind"] == "Response"]
        body = response["body"].encode()

        # Schema-valid and signed by the DCC.
        root = parse_document(body)
        schema.validate(root)
        verified = verify_signature(root, _dcc_certificate)
        assert verified.certificate_der == pki().entry("dcc-xml-sign").certificate.der

        # The GBCS payload is the meter's answer, byte for byte, signed by the meter.
        payload = gbcs_payload(response["body"])
        (output,) = runtime.store.estate.outputs(TCOS_METER)
        assert payload == output.message
        frame = decode_frame(payload)
        (device_ds,) = runtime.store.certificates.by_subject(
            TCOS_METER, None, KeyUsage.DIGITAL_SIGNATURE
        )
        verify_gbcs_signature(frame, SmkiCertificate.from_der(device_ds.der).public_key)

        # Its ExecutionOutcome is what happened on the meter.
        content = decode_payload(frame)
        assert isinstance(content, UpdateSecurityCredentialsResponse)
        outcome = content.execution_outcome
        assert outcome is not None
        (command,) = runtime.store.commands.for_request(rid)
        assert outcome.authorising_remote_party_seq_number == command.originator_counter
        meter = runtime.estate.state(TCOS_METER)
        assert meter is not None
        assert len(outcome.replacement_outcomes) == 3
        for r in outcome.replacement_outcomes:
            assert r.status_code is StatusCode.SUCCESS
            held = meter.cell(r.affected_trust_anchor_cell)
            assert (held.subject_unique_id, held.subject_key_id) == (
                r.replacing_subject_unique_id,
                r.replacing_subject_key_id,
            )
            assert r.replacing_subject_unique_id == SUPPLIER_B
            assert r.existing_subject_unique_id == SUPPLIER_A

        # The MMC form: UpdateSecurityCredentialsCoSRsp with the same ExecutionOutcome.
        answer = client.get(f"/api/requests/{rid}/outcome")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("application/xml")
        mmc = parse_document(answer.content)
        schema.validate(mmc)
        assert mmc.findtext(f"{RA}Header/{RA}BusinessOriginatorID") == TCOS_METER.duis
        assert mmc.findtext(f"{RA}Header/{RA}BusinessTargetID") == SUPPLIER_B.duis
        rsp = mmc.find(
            f"{RA}Body/{RA}ResponseMessage/{RA}SMETSData/{RA}UpdateSecurityCredentialsCoSRsp"
        )
        assert rsp is not None
        execution = rsp.find(f"{RA}ExecutionOutcome")
        assert execution is not None
        assert execution.findtext(f"{RA}AuthorisingRemotePartyOriginatorCounter") == str(
            outcome.authorising_remote_party_seq_number
        )
        assert execution.findtext(f"{RA}CredentialsReplacementMode") == "SupplierByTransCoS"
        reported = execution.findall(f"{RA}ReplacementOutcome")
        assert len(reported) == len(outcome.replacement_outcomes)
        for element, r in zip(reported, outcome.replacement_outcomes, strict=True):
            kind, a_entry = CELLS[r.affected_trust_anchor_cell]
            assert element.findtext(f"{RA}StatusCode/{RA}ASN1Status") == "success"
            assert element.findtext(f"{RA}CertificateType") == kind
            assert element.findtext(f"{RA}NewRemotePartyID") == r.replacing_subject_unique_id.duis
            assert element.findtext(f"{RA}ExistingRemotePartyID") == SUPPLIER_A.duis
            new = base64.b64decode(element.findtext(f"{RA}NewCertificateHash") or "")
            assert new == hashlib.sha1(meter.cell(r.affected_trust_anchor_cell).der).digest()
            old = base64.b64decode(element.findtext(f"{RA}ExistingCertificateHash") or "")
            assert old == hashlib.sha1(pki().entry(a_entry).certificate.der).digest()
    runtime.close()
