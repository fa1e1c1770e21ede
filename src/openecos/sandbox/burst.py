"""A burst of change-of-supplier requests for a sandbox, valid and deliberately not.

Theory of operation: :func:`plan_burst` picks meters of the sandbox, makes the
other supplier their registered supplier from ``now`` (as the registration
service would after a switch), and builds one signed 6.23 per meter. Among
them it mixes requests that must be refused, one kind per way a real request
goes wrong, each labelled with what should happen, so a demonstration or a
test can compare what the service answered with what it should have:

- ``valid``: the gaining supplier, registered, its own certificates;
- ``not-registered``: a supplier asking for a meter it has not won;
- ``foreign-certificates``: the gaining supplier sending another party's certificates;
- ``unknown-device``: a RequestID target that is no device of the inventory;
- ``tampered``: a signed request altered after signing;
- ``replayed``: a valid request sent a second time.

Refusals at intake (bad signature, replay) come back in the acknowledgement;
refusals by the CoS checks come back later as the request's DUIS response.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from openecos.duis import RequestId, build_update_security_credentials_cos, sign_document
from openecos.eui import Eui64
from openecos.sandbox.errors import SandboxError
from openecos.sandbox.load import Sandbox
from openecos.sandbox.requests import gaining_user, new_cos_request, signing_identity
from openecos.store import DeviceStatus


class BurstKind(StrEnum):
    VALID = "valid"
    NOT_REGISTERED = "not-registered"
    FOREIGN_CERTIFICATES = "foreign-certificates"
    UNKNOWN_DEVICE = "unknown-device"
    TAMPERED = "tampered"
    REPLAYED = "replayed"


@dataclass(frozen=True, slots=True)
class BurstRequest:
    kind: BurstKind
    request_id: str
    device: Eui64
    gaining_user: Eui64
    document: bytes


SUPPLIERS = ("SUPPLIER-A", "SUPPLIER-B")
UNKNOWN_DEVICE = Eui64.parse("00DBFFFFFFFFFFFE")


def plan_burst(
    sandbox: Sandbox,
    *,
    valid: int,
    each_invalid: int,
    now: datetime,
    first_counter: int,
    seed: int = 7,
) -> list[BurstRequest]:
    """Signed requests in sending order: ``valid`` good ones and ``each_invalid`` of each bad
    kind, mixed; the replays (copies of valid requests already sent) come last."""
    rng = random.Random(seed)
    with sandbox.open_store() as store:
        meters = [
            d
            for d in store.devices.find(status=DeviceStatus.COMMISSIONED, limit=1_000_000)
            if d.mpxn is not None
        ]
        rng.shuffle(meters)
        wanted = valid + 4 * each_invalid
        if len(meters) < wanted:
            raise SandboxError(f"the sandbox has {len(meters)} meters; the burst needs {wanted}")
        counter = first_counter
        out: list[BurstRequest] = []

        def build(device_index: int, kind: BurstKind, register: bool) -> BurstRequest:
            nonlocal counter
            device = meters[device_index]
            assert device.mpxn is not None
            current = store.registrations.registered_supplier(device.mpxn, now)
            current_party = current.party_id if current is not None else None
            gaining = next(p for p in SUPPLIERS if p != current_party)
            _, user, mpid = gaining_user(sandbox, gaining, device)
            if register:
                store.registrations.change_supplier(device.mpxn, mpid, now)
            counter += 1
            request = new_cos_request(sandbox, device.eui, gaining, counter=counter).request
            target = device.eui
            if kind is BurstKind.FOREIGN_CERTIFICATES:
                other = next(p for p in SUPPLIERS if p != gaining)
                foreign = new_cos_request(sandbox, device.eui, other, counter=counter).request
                request = replace(request, body=foreign.body)
            elif kind is BurstKind.UNKNOWN_DEVICE:
                target = UNKNOWN_DEVICE
                request_id = RequestId(user.user_id, target, counter)
                request = replace(request, header=replace(request.header, request_id=request_id))
            identity = signing_identity(sandbox, user)
            document = sign_document(build_update_security_credentials_cos(request), identity)
            request_id_text = str(request.header.request_id)
            return BurstRequest(kind, request_id_text, target, user.user_id, document)

        bad_kinds = (
            (BurstKind.NOT_REGISTERED, False),
            (BurstKind.FOREIGN_CERTIFICATES, True),
            (BurstKind.UNKNOWN_DEVICE, False),
            (BurstKind.TAMPERED, True),
        )
        plan = [(BurstKind.VALID, True)] * valid + list(bad_kinds) * each_invalid
        # Shuffled before building: RequestID counters must rise in the order of sending
        # (a lower counter than one already seen from that user is refused as reordered).
        rng.shuffle(plan)
        for index, (kind, register) in enumerate(plan):
            made = build(index, kind, register)
            if kind is BurstKind.TAMPERED:
                made = replace(made, document=_tampered(made.document))
            out.append(made)
        replays = [r for r in out if r.kind is BurstKind.VALID][:each_invalid]
        out += [replace(r, kind=BurstKind.REPLAYED) for r in replays]
    return out


def _tampered(document: bytes) -> bytes:
    # Change the ImportMPxN's last digit after signing: the digest no longer matches.
    start = document.index(b"<sr:ImportMPxN>") + len(b"<sr:ImportMPxN>")
    end = document.index(b"</sr:ImportMPxN>", start)
    digit = document[end - 1 : end]
    return document[: end - 1] + (b"1" if digit != b"1" else b"2") + document[end:]
