"""The HTTP interface: the DUIS endpoint, user message pull, a JSON API, health.

Theory of operation. :func:`create_app` builds a FastAPI application over a
:class:`~openecos.service.ServiceRuntime`. Handlers are plain (``def``)
functions, so FastAPI runs them in its thread pool and the store's blocking
calls never stall the event loop. The application is stateless beyond the
runtime: any number of API processes may serve one PostgreSQL store.

- ``POST /duis``: a signed DUIS request in, the signed acknowledgement out,
  always HTTP 200 with the DUIS ``ResponseCode`` inside (I99, or the error
  code); HTTP 4xx only for a body that is not XML at all (415) or too large
  (413), where there is nothing to acknowledge.
- ``GET /users/{user_id}/messages``: the user's waiting responses and alerts,
  oldest first, consumed by the read (the store hands each out once, across
  processes).
- ``GET /api/requests/{request_id}``, ``GET /api/devices/{eui}``,
  ``GET /api/audit``: read-only views.
- ``GET /api/requests/{request_id}/outcome``: the meter's answer as the MMC
  ``UpdateSecurityCredentialsCoSRsp`` (Parse & Correlate's view of the
  GBCSPayload the signed service response carries; see
  :mod:`openecos.service.mmc_view`).
- ``GET /api/quarantine``, ``POST /api/quarantine/{request_id}/release``: the
  requests Threshold Anomaly Detection holds, and the operator's release
  (:class:`~openecos.service.quarantine.QuarantineDesk`).
- ``GET /health``.

The OpenAPI document (``/openapi.json``) is the interface specification.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from hashlib import sha256
from typing import Annotated

from fastapi import FastAPI, HTTPException, Path, Query, Request, Response
from sqlalchemy import func, select

from openecos.api.models import (
    AuditView,
    CellView,
    CommandView,
    DeviceView,
    Health,
    HeldRequestView,
    Problem,
    RequestView,
    UserMessage,
)
from openecos.duis import DEFAULT_MAX_SIZE
from openecos.eui import Eui64, InvalidEui
from openecos.service import ServiceRuntime
from openecos.service.mmc_view import mmc_outcome
from openecos.service.quarantine import NotHeld
from openecos.store import CommandRecord, NotFound, read_transaction, schema

XML_MEDIA_TYPE = "application/xml"
_XML_TYPES = ("application/xml", "text/xml", "application/soap+xml")


def _command(c: CommandRecord) -> CommandView:
    return CommandView(
        signer=c.signer.hex,
        originator_counter=str(c.originator_counter),
        device=c.device.hex,
        message_code=f"0x{int(c.message_code):04X}",
        status=c.status.value,
        credential_changing=c.credential_changing,
        created_at=c.created_at,
        sent_at=c.sent_at,
        answered_at=c.answered_at,
    )


def _eui(text: str) -> Eui64:
    try:
        return Eui64.parse(text)
    except InvalidEui as exc:
        raise HTTPException(status_code=422, detail=f"not an EUI-64: {text!r}") from exc


def create_app(runtime: ServiceRuntime, *, manage_runtime: bool = True) -> FastAPI:
    """The application; with ``manage_runtime`` it starts and stops the runtime's workers."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if manage_runtime:
            runtime.start()
        try:
            yield
        finally:
            if manage_runtime:
                runtime.stop()

    app = FastAPI(
        title="OpenECoS",
        version="0.1",
        summary="Enduring Change of Supplier service: DUIS SR 6.23 over HTTP",
        description=(
            "Post signed DUIS 6.23 requests to `/duis`, pull responses and alerts from "
            "`/users/{user_id}/messages`, and inspect requests, devices and the audit "
            "trail under `/api`."
        ),
        lifespan=lifespan,
    )
    store = runtime.store

    @app.post(
        "/duis",
        summary="Submit a signed DUIS service request (SR 6.23)",
        description=(
            "The body is a signed `sr:Request`. The answer is the signed acknowledgement "
            "`sr:Response`: `I99` when the request was recorded (it is processed "
            "asynchronously; its outcome arrives in the user's messages), otherwise the "
            "DUIS error code, and nothing was recorded but an audit entry. HTTP 200 in "
            "both cases; 413 for a body over the size cap and 415 for a body that is not "
            "XML."
        ),
        response_class=Response,
        responses={
            200: {
                "content": {XML_MEDIA_TYPE: {}},
                "description": "The signed DUIS acknowledgement",
            },
            413: {"model": Problem, "description": "Body larger than the DUIS size cap"},
            415: {"model": Problem, "description": "Body is not an XML document"},
        },
    )
    async def post_duis(request: Request) -> Response:
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > DEFAULT_MAX_SIZE:
                raise HTTPException(status_code=413, detail="request body too large")
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in _XML_TYPES:
            raise HTTPException(status_code=415, detail=f"expected XML, got {content_type}")
        if not bytes(body).lstrip().startswith(b"<"):
            raise HTTPException(status_code=415, detail="the body is not an XML document")
        result = await runtime.intake.receive_async(bytes(body))
        if result.response_code.value == "I99":
            runtime.wake()
        return Response(content=result.acknowledgement, media_type=XML_MEDIA_TYPE)

    @app.get(
        "/users/{user_id}/messages",
        summary="Pull a user's responses and alerts",
        description=(
            "Returns up to `limit` waiting messages for the user, oldest first, and "
            "consumes them: each message is handed out once, even with several API "
            "processes."
        ),
        response_model=list[UserMessage],
    )
    def get_messages(
        user_id: Annotated[str, Path(description="The DUIS user ID (EUI-64)")],
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[UserMessage]:
        messages = store.outbox.take(_eui(user_id), at=runtime.clock.now(), limit=limit)
        return [
            UserMessage(
                message_id=m.message_id,
                kind=m.kind.value,
                request_id=m.request_id,
                created_at=m.created_at,
                body=m.body.decode("utf-8"),
            )
            for m in messages
        ]

    @app.get(
        "/api/requests/{request_id}",
        summary="A request and its commands",
        description="The request's lifecycle state, response code and the commands sent for it.",
        response_model=RequestView,
        responses={404: {"model": Problem}},
    )
    def get_request(
        request_id: Annotated[str, Path(description="DUIS RequestID (originator:target:counter)")],
    ) -> RequestView:
        try:
            r = store.requests.get(request_id)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        return RequestView(
            request_id=r.request_id,
            originator=r.originator.hex,
            target=r.target.hex,
            counter=str(r.counter),
            service_reference=r.service_reference,
            status=r.status.value,
            response_code=r.response_code,
            execution_at=r.execution_at,
            cos_party=None if r.cos_party is None else r.cos_party.hex,
            received_at=r.received_at,
            updated_at=r.updated_at,
            commands=[_command(c) for c in store.commands.for_request(r.request_id)],
        )

    @app.get(
        "/api/requests/{request_id}/outcome",
        summary="The meter's answer to a request, in the MMC's XML",
        description=(
            "The MMC `GBCSResponse` for the meter's last answer to the request's command: "
            "`UpdateSecurityCredentialsCoSRsp` with its `ExecutionOutcome` (none for a "
            "future-dated command only accepted so far), or the future-dated outcome alert. "
            "It is what Parse & Correlate makes of the `GBCSPayload` in the signed DUIS "
            "service response (DUIS carries the payload, not this XML); unsigned, as the MMC "
            "defines it. 404 for an unknown request or one the meter has not answered."
        ),
        response_class=Response,
        responses={
            200: {"content": {XML_MEDIA_TYPE: {}}, "description": "MMC GBCSResponse"},
            404: {"model": Problem},
        },
    )
    def get_request_outcome(
        request_id: Annotated[str, Path(description="DUIS RequestID (originator:target:counter)")],
    ) -> Response:
        try:
            document = mmc_outcome(store, runtime.keys.parties, request_id)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        if document is None:
            raise HTTPException(status_code=404, detail="the meter has not answered yet")
        return Response(content=document, media_type=XML_MEDIA_TYPE)

    @app.get(
        "/api/devices/{eui}",
        summary="A device: inventory record, CoS credential state and trust-anchor cells",
        description="What the DCC believes the device holds, and its command in flight.",
        response_model=DeviceView,
        responses={404: {"model": Problem}},
    )
    def get_device(eui: Annotated[str, Path(description="Device EUI-64")]) -> DeviceView:
        device_id = _eui(eui)
        try:
            d = store.devices.get(device_id)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        in_flight = store.commands.in_flight(device_id)
        return DeviceView(
            eui=d.eui.hex,
            device_type=d.device_type.value,
            status=d.status.value,
            mpxn=d.mpxn,
            manufacturer=d.manufacturer,
            model=d.model,
            firmware_version=d.firmware_version,
            credential_state=d.credential_state.value,
            born_ecos=d.born_ecos,
            region=d.region,
            in_flight_command=None if in_flight is None else _command(in_flight),
            cells=[
                CellView(
                    role=c.role.name,
                    key_usage=c.key_usage.value,
                    cell_usage=c.cell_usage.name,
                    subject_eui=c.subject_eui.hex,
                    subject_key_id=c.ski.hex().upper(),
                    certificate_sha256=sha256(c.certificate_der).hexdigest().upper(),
                )
                for c in store.devices.trust_anchors(device_id)
            ],
        )

    @app.get(
        "/api/audit",
        summary="The audit trail",
        description="Entries in order of appending, after `after_id`, optionally for one subject.",
        response_model=list[AuditView],
    )
    def get_audit(
        subject: Annotated[str | None, Query(max_length=255)] = None,
        after_id: Annotated[int, Query(ge=0)] = 0,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[AuditView]:
        return [
            AuditView(
                entry_id=e.entry_id,
                at=e.at,
                actor=e.actor,
                action=e.action,
                subject=e.subject,
                details=dict(e.details),
            )
            for e in store.audit.entries(subject=subject, after_id=after_id, limit=limit)
        ]

    @app.get(
        "/api/quarantine",
        summary="Requests held by Threshold Anomaly Detection",
        description=(
            "Requests in the Quarantined state, oldest first, with the QuarantineEventRef "
            "their user was alerted with."
        ),
        response_model=list[HeldRequestView],
    )
    def get_quarantine(
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[HeldRequestView]:
        return [
            HeldRequestView(
                request_id=h.request_id,
                quarantine_event_ref=h.quarantine_event_ref,
                breach=h.breach,
                quarantined_at=h.at,
            )
            for h in runtime.quarantine.held(limit)
        ]

    @app.post(
        "/api/quarantine/{request_id}/release",
        summary="Release a quarantined request",
        description=(
            "An operator's release of a request held by Threshold Anomaly Detection (on the "
            "user's Exit Quarantine instruction): it is counted once, now, queued, checked "
            "again and sent. 404 for an unknown request, 409 for one that is not held."
        ),
        response_model=RequestView,
        responses={404: {"model": Problem}, 409: {"model": Problem}},
    )
    def release_quarantined(
        request_id: Annotated[str, Path(description="DUIS RequestID (originator:target:counter)")],
    ) -> RequestView:
        try:
            runtime.quarantine.release(request_id)
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        except NotHeld as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        runtime.wake()
        return get_request(request_id)

    @app.get(
        "/health",
        summary="Liveness",
        description="Answers when the store can be read.",
        response_model=Health,
    )
    def health() -> Health:
        with read_transaction(store.engine) as conn:
            version = conn.execute(select(func.max(schema.schema_version.c.version))).scalar()
        return Health(status="ok", schema_version=int(version or 0), worker_id=runtime.worker_id)

    app.include_router(__import__("openecos.api.migration", fromlist=["x"]).create_router(runtime))
    return app
