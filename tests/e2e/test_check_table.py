"""Every 6.23 check, failed on purpose over HTTP: its own DUIS code, and nothing changes.

One row per :class:`openecos.cos.CosCheck` (the table is checked to cover the
enum), then one per intake-level refusal. Each row posts a signed request
crafted to fail exactly that check to the running service (SQLite and
PostgreSQL), then proves:

- the requester gets a DUIS response with the check's own code from
  :data:`openecos.cos.CHECK_RESPONSE_CODES` (intake refusals: the code of the
  :class:`openecos.duis.DuisFailure`, in the synchronous acknowledgement);
- the audit log names the check (or the intake failure);
- nothing else moved: no command recorded, no TCoS/ECoS signing counter
  consumed, the inventory's cells and credential state and the simulated
  meter (its encoded state, byte for byte) as before.

Two checks cannot be reached by a request that passes intake, and the rows
say so: the signer binding is made at intake (the same check, answered with
the same code E1 in the acknowledgement), and the XSD bounds the floor
sequence numbers tighter than the check does (the XSD answers, E40).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import pytest

from openecos.cos import CHECK_RESPONSE_CODES, CosCheck
from openecos.duis import FAILURE_RESPONSE_CODES, DuisFailure, RequestId, ResponseCode
from openecos.eui import Eui64
from openecos.smki.sandbox import NETWORK_OPERATOR, SUPPLIER_A, SUPPLIER_A_SECOND, SUPPLIER_B
from openecos.store import NotFound
from tests.e2e.conftest import Served
from tests.e2e.world import (
    GAS_PROXY,
    UNCOMMISSIONED_METER,
    UNKNOWN_DEVICE,
    Snapshot,
    build_request,
    certificate,
    expired_supplier_b_ds,
    later,
    next_counter,
    resign,
)
from tests.service.env import (
    MPXN,
    SPARE_METERS,
    element_text,
    pki,
    post,
    response_code,
    status_of,
    wait_until,
)


class Stage(Enum):
    INTAKE = "intake"  # answered synchronously in the acknowledgement; nothing recorded
    WORKER = "worker"  # acknowledged (I99), then rejected with a response in the outbox


@dataclass(frozen=True)
class Row:
    name: str
    device: Eui64
    build: Callable[[int], bytes]  # the RequestID counter → signed request
    originator: Eui64 = SUPPLIER_B
    stage: Stage = Stage.WORKER
    prepare: Callable[[Served], None] | None = None
    counter: int | None = None  # a fixed RequestID counter (default: the next one)


def _b(device: Eui64, **kwargs: object) -> Callable[[int], bytes]:
    return lambda counter: build_request(device, counter, **kwargs)  # type: ignore[arg-type]


def _floor_too_large(counter: int) -> bytes:
    body = build_request(SPARE_METERS[5], counter)
    edited = body.replace(
        b"<sr:SupplierFloorSeqNumber>0<", f"<sr:SupplierFloorSeqNumber>{1 << 64}<".encode()
    )
    assert edited != body
    return resign(edited)


def _pending_future_dated(device: Eui64) -> Callable[[Served], None]:
    """Puts a future-dated switch on ``device`` and waits until the meter holds it."""

    def prepare(served: Served) -> None:
        counter = next_counter()
        assert post(served.client, build_request(device, counter, execution=later(3))) == "I99"
        rid = RequestId(SUPPLIER_B, device, counter).duis
        wait_until(lambda: status_of(served.client, rid) == "FutureDatedPending")
        served.client.get(f"/users/{SUPPLIER_B.hex}/messages")  # its commandAccepted

    return prepare


_KA = certificate("supplier-b-ka")
_TOP_UP = certificate("supplier-b-ka-topup")

#: One row per CosCheck, in the enum's order.
CHECK_ROWS: dict[CosCheck, Row] = {
    CosCheck.USER_KNOWN: Row(
        "second entity of supplier A: a certificate, no user record",
        SPARE_METERS[0],
        _b(SPARE_METERS[0], signer="supplier-a2-xml-sign", originator=SUPPLIER_A_SECOND),
        originator=SUPPLIER_A_SECOND,
    ),
    CosCheck.USER_ROLE: Row(
        "a network operator (ED) may not send 6.23",
        SPARE_METERS[0],
        _b(SPARE_METERS[0], signer="network-operator-xml-sign", originator=NETWORK_OPERATOR),
        originator=NETWORK_OPERATOR,
    ),
    CosCheck.SIGNER_IS_ORIGINATOR: Row(
        "signed by supplier A, RequestID originator B (bound at intake)",
        SPARE_METERS[0],
        _b(SPARE_METERS[0], signer="supplier-a-xml-sign"),
        stage=Stage.INTAKE,
    ),
    CosCheck.EXECUTION_TIME: Row(
        "ExecutionDateTime in the past",
        SPARE_METERS[0],
        _b(SPARE_METERS[0], execution=later(-1)),
    ),
    CosCheck.FLOOR_SEQ_NUMBERS: Row(
        "SupplierFloorSeqNumber 2^64 (the XSD refuses it first)",
        SPARE_METERS[5],
        _floor_too_large,
        stage=Stage.INTAKE,
    ),
    CosCheck.REGISTERED_SUPPLIER: Row(
        "supplier A is no longer the registered supplier",
        SPARE_METERS[0],
        _b(SPARE_METERS[0], signer="supplier-a-xml-sign", originator=SUPPLIER_A),
        originator=SUPPLIER_A,
    ),
    CosCheck.DEVICE_KNOWN: Row(
        "a device in no inventory, at B's MPxN",
        UNKNOWN_DEVICE,
        _b(UNKNOWN_DEVICE, mpxn=MPXN[SPARE_METERS[1]]),
    ),
    CosCheck.DEVICE_SERVES_MPXN: Row(
        "B's meter, with another of B's MPxNs",
        SPARE_METERS[1],
        _b(SPARE_METERS[1], mpxn=MPXN[SPARE_METERS[2]]),
    ),
    CosCheck.DEVICE_TYPE: Row("a gas proxy function", GAS_PROXY, _b(GAS_PROXY)),
    CosCheck.DEVICE_COMMISSIONED: Row(
        "installed, not commissioned", UNCOMMISSIONED_METER, _b(UNCOMMISSIONED_METER)
    ),
    CosCheck.REPLACEMENT_CERTIFICATES: Row(
        "a key-agreement certificate for the digital-signing cell",
        SPARE_METERS[2],
        _b(SPARE_METERS[2], replacements=(_KA, _KA, _TOP_UP)),
    ),
    CosCheck.REPLACEMENT_OWNER: Row(
        "supplier A's certificates in B's request",
        SPARE_METERS[2],
        _b(
            SPARE_METERS[2],
            replacements=(
                certificate("supplier-a-ds"),
                certificate("supplier-a-ka"),
                certificate("supplier-a-ka-topup"),
            ),
        ),
    ),
    CosCheck.CERTIFICATION_PATH: Row(
        "the device CA as the path of organisation certificates",
        SPARE_METERS[3],
        _b(SPARE_METERS[3], path=(pki().device_ca.certificate.der,)),
    ),
    CosCheck.CERTIFICATE_VALIDITY: Row(
        "B's digital-signing certificate expired before now",
        SPARE_METERS[3],
        lambda counter: build_request(
            SPARE_METERS[3],
            counter,
            replacements=(expired_supplier_b_ds().certificate.der, _KA, _TOP_UP),
        ),
    ),
    CosCheck.COMMAND_IN_FLIGHT: Row(
        "an immediate switch while a future-dated one is pending",
        SPARE_METERS[4],
        _b(SPARE_METERS[4]),
        prepare=_pending_future_dated(SPARE_METERS[4]),
    ),
}

#: The intake's refusals: the DUIS failure each must produce.
INTAKE_ROWS: dict[DuisFailure, Row] = {
    DuisFailure.SCHEMA_INVALID: Row(
        "an element the XSD does not allow",
        SPARE_METERS[6],
        lambda c: resign(
            build_request(SPARE_METERS[6], c).replace(
                b"<sr:ImportMPxN>", b"<sr:Unexpected>1</sr:Unexpected><sr:ImportMPxN>"
            )
        ),
        stage=Stage.INTAKE,
    ),
    DuisFailure.DIGEST_MISMATCH: Row(
        "signed, then the MPxN changed",
        SPARE_METERS[6],
        lambda c: build_request(SPARE_METERS[6], c).replace(
            MPXN[SPARE_METERS[6]].encode(), MPXN[SPARE_METERS[7]].encode()
        ),
        stage=Stage.INTAKE,
    ),
    DuisFailure.UNKNOWN_SIGNING_CERTIFICATE: Row(
        "an XML-signing certificate of B that the DCC never registered",
        SPARE_METERS[6],
        lambda c: build_request(SPARE_METERS[6], c, signing_entry=_unregistered_xml_sign()),
        stage=Stage.INTAKE,
    ),
    DuisFailure.SIGNER_NOT_BOUND: Row(
        "signed by supplier A, RequestID originator B",
        SPARE_METERS[6],
        _b(SPARE_METERS[6], signer="supplier-a-xml-sign"),
        stage=Stage.INTAKE,
    ),
    DuisFailure.COUNTER_NOT_INCREASING: Row(
        "a RequestID counter below one already used (reordered or replayed)",
        SPARE_METERS[6],
        lambda c: build_request(SPARE_METERS[6], c),
        stage=Stage.INTAKE,
        prepare=lambda served: _b_has_sent_a_request(served),
        counter=1,
    ),
}


def _b_has_sent_a_request(served: Served) -> None:
    """Makes sure B has used a counter above 1 (a request the worker will reject: E19)."""
    body = build_request(UNKNOWN_DEVICE, next_counter(), mpxn=MPXN[SPARE_METERS[1]])
    assert post(served.client, body) == "I99"


def _unregistered_xml_sign():  # type: ignore[no-untyped-def]
    from openecos.gbcs.codes import KeyUsage, RemotePartyRole

    return pki().issue_organisation(
        "supplier-b-xml-sign-unregistered",
        eui=SUPPLIER_B,
        role=RemotePartyRole.XML_SIGN,
        key_usage=KeyUsage.DIGITAL_SIGNATURE,
        cell_usage=None,
    )


def test_the_table_has_a_row_for_every_check() -> None:
    assert list(CHECK_ROWS) == list(CosCheck)


def _recorded(served: Served, rid: str) -> bool:
    try:
        served.runtime.store.requests.get(rid)
    except NotFound:
        return False
    return True


def _refuse(served: Served, row: Row) -> tuple[str, str, list[dict[str, object]]]:
    """Posts the row's request; returns its RequestID, the code received and its audit."""
    if row.prepare is not None:
        row.prepare(served)
    before = Snapshot.take(served.runtime, row.device)
    last_counter = served.runtime.store.requests.last_counter(row.originator)
    counter = row.counter if row.counter is not None else next_counter()
    rid = RequestId(row.originator, row.device, counter).duis
    answer = served.client.post(
        "/duis", content=row.build(counter), headers={"content-type": "application/xml"}
    )
    assert answer.status_code == 200
    acknowledgement = response_code(answer.content)
    if row.stage is Stage.INTAKE:
        code = acknowledgement
        assert not _recorded(served, rid)
        assert served.runtime.store.requests.last_counter(row.originator) == last_counter
    else:
        assert acknowledgement == "I99"
        wait_until(lambda: status_of(served.client, rid) == "Rejected")
        messages = served.client.get(f"/users/{row.originator.hex}/messages").json()
        assert [m["request_id"] for m in messages] == [rid]
        body = messages[0]["body"]
        code = response_code(body)
        assert element_text(body, "sr:Header/sr:RequestID") == rid
        assert served.runtime.store.requests.get(rid).response_code == code
        assert served.runtime.store.commands.for_request(rid) == []
    assert Snapshot.take(served.runtime, row.device) == before
    audit = served.client.get("/api/audit", params={"subject": rid}).json()
    return rid, code, audit


@pytest.mark.parametrize("check", list(CHECK_ROWS), ids=[c.value for c in CHECK_ROWS])
def test_a_failed_check_answers_its_own_code_and_changes_nothing(
    served: Served, check: CosCheck
) -> None:
    row = CHECK_ROWS[check]
    _, code, audit = _refuse(served, row)
    if check is CosCheck.FLOOR_SEQ_NUMBERS:
        # Defence in depth: the XSD's floorSequenceNumber refuses it before any check runs.
        assert code == FAILURE_RESPONSE_CODES[DuisFailure.SCHEMA_INVALID].value
        assert [e["details"]["failure"] for e in audit] == [DuisFailure.SCHEMA_INVALID.value]
        return
    assert code == CHECK_RESPONSE_CODES[check].value, row.name
    if row.stage is Stage.INTAKE:
        assert [e["action"] for e in audit] == ["request.refused"]
        return
    assert [e["action"] for e in audit] == ["request.acknowledged", "request.rejected"]
    assert audit[-1]["details"]["check"] == check.value
    assert audit[-1]["details"]["response_code"] == code


@pytest.mark.parametrize("failure", list(INTAKE_ROWS), ids=[f.value for f in INTAKE_ROWS])
def test_an_intake_refusal_answers_its_code_and_records_nothing(
    served: Served, failure: DuisFailure
) -> None:
    row = INTAKE_ROWS[failure]
    _, code, audit = _refuse(served, row)
    assert code == FAILURE_RESPONSE_CODES[failure].value
    assert [e["action"] for e in audit] == ["request.refused"]
    assert audit[0]["details"]["failure"] == failure.value
    assert audit[0]["details"]["response_code"] == code
    assert code != ResponseCode.I99.value
