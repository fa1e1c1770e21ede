"""HTTP routes of the migration: regimes, run control, the exceptions queue, status, EMRR.

Theory of operation. One router over the runtime's store and clock, through
the same desks the command line uses
(:class:`~openecos.service.migration_desk.MigrationDesk`,
:class:`~openecos.service.migration_regime.RegimeDesk`), so HTTP and CLI
changes are the same audit-logged transactions. Handlers are plain ``def``
(FastAPI's thread pool). Refusals are HTTP 409 with the reason (an event the
run-control or lifecycle table does not allow, a regime change without its
approvals or readiness), 404 for an unknown meter, 422 for bad input.

- ``GET /api/regime``; ``POST /api/regime/approvals``; ``POST /api/regime/changes``
- ``GET /api/migration``; ``POST /api/migration/run`` (``{"event": "start"}``)
- ``GET /api/migration/exceptions``; ``GET /api/migration/meters/{eui}``;
  ``POST /api/migration/meters/{eui}/actions`` (retry, hold, release,
  field-visit, resolve-*)
- ``GET /api/emrr?supplier=&format=json|csv``
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, Field

from openecos.eui import Eui64, InvalidEui
from openecos.migration import (
    IllegalTransition,
    IneligibleReason,
    InvalidMigrationInput,
    MeterMigration,
    OperatorAction,
    RegimeChangeRefused,
    RegimeEvent,
    ReportInconsistent,
    RunEvent,
    render_csv,
    report_json,
)
from openecos.service import ServiceRuntime
from openecos.service.migration_desk import MigrationDesk
from openecos.service.migration_regime import RegimeDesk
from openecos.store import NotFound
from openecos.store.migration_regime import approval_json, readiness_from_json, readiness_json

ACTIONS = {
    "retry": OperatorAction.RETRY_NOW,
    "hold": OperatorAction.HOLD,
    "release": OperatorAction.RELEASE_HOLD,
    "field-visit": OperatorAction.FIELD_VISIT,
    "resolve-migrated": OperatorAction.RESOLVE_MIGRATED,
    "resolve-not-migrated": OperatorAction.RESOLVE_NOT_MIGRATED,
    "resolve-ineligible": OperatorAction.RESOLVE_INELIGIBLE,
}


class ApprovalIn(BaseModel):
    event: str = Field(description="go-live | back-out | retire-tcos")
    approver: str
    reason: str


class ChangeIn(BaseModel):
    event: str = Field(description="go-live | back-out | retire-tcos")
    requested_by: str
    readiness: dict[str, Any] | None = Field(
        default=None,
        description='{"assessed_at": ISO, "results": [{"criterion", "met", "evidence": [...]}]}',
    )


class RunIn(BaseModel):
    event: str = Field(description="start | pause | resume | drain | stop")
    actor: str
    note: str = ""


class ActionIn(BaseModel):
    action: str = Field(description=", ".join(ACTIONS))
    actor: str
    note: str
    ineligible: str | None = Field(default=None, description="IneligibleReason name")


class MeterView(BaseModel):
    device: str
    status: str
    reason: str
    next_action: str
    next_at: datetime | None
    since: datetime
    credentials: str
    attempts: int
    total_attempts: int
    reads: int
    error: str | None
    ineligible: str | None
    actor: str | None
    note: str


def meter_view(record: MeterMigration) -> MeterView:
    return MeterView(
        device=record.device.hex,
        status=record.status.value,
        reason=record.reason.name,
        next_action=record.next_action.value,
        next_at=record.next_at,
        since=record.since,
        credentials=record.credentials.name,
        attempts=record.attempts,
        total_attempts=record.total_attempts,
        reads=record.reads,
        error=None if record.error is None else record.error.name,
        ineligible=None if record.ineligible is None else record.ineligible.name,
        actor=record.actor,
        note=record.note,
    )


def _eui(text: str) -> Eui64:
    try:
        return Eui64.parse(text)
    except InvalidEui as exc:
        raise HTTPException(status_code=422, detail=f"not an EUI-64: {text!r}") from exc


def _choice(kind: type[Any], value: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise HTTPException(status_code=422, detail=f"unknown {kind.__name__}: {value!r}") from None


def create_router(runtime: ServiceRuntime) -> APIRouter:
    """The migration routes over ``runtime`` (see the module docstring)."""
    router = APIRouter(tags=["migration"])
    desk = MigrationDesk(runtime.store, runtime.clock, runtime.identities)
    regimes = RegimeDesk(runtime.store, runtime.clock)

    @router.get("/api/regime", summary="The ETMAD regime, its history and waiting approvals")
    def get_regime() -> dict[str, Any]:
        """The current regime (pre-go-live, migration, enduring), every change made with its
        approvals and readiness evidence, and the approvals recorded for a change not yet made.
        """
        view = regimes.view()
        return {
            "regime": view.regime.value,
            "history": [
                {
                    "change_id": c.change_id,
                    "from": c.change.previous.value,
                    "event": c.change.event.value,
                    "to": c.change.regime.value,
                    "at": c.change.at.isoformat(),
                    "requested_by": c.requested_by,
                    "approvals": [approval_json(a) for a in c.change.approvals],
                    "readiness": None
                    if c.change.readiness is None
                    else readiness_json(c.change.readiness),
                }
                for c in view.history
            ],
            "pending_approvals": [approval_json(p.approval) for p in view.pending],
        }

    @router.post("/api/regime/approvals", summary="Approve a regime change")
    def post_approval(body: ApprovalIn) -> dict[str, Any]:
        """Records one approver's approval (who, why; the time is the service's) of a regime
        change. Audit-logged.
        """
        try:
            recorded = regimes.approve(
                _choice(RegimeEvent, body.event), approver=body.approver, reason=body.reason
            )
        except InvalidMigrationInput as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        return {"approval_id": recorded.approval_id, **approval_json(recorded.approval)}

    @router.post("/api/regime/changes", summary="Make a regime change")
    def post_change(body: ChangeIn) -> dict[str, Any]:
        """Makes the change with the approvals recorded for it and the readiness evidence given;
        409 with the reason when the policy is not met (approvals missing, readiness not met).
        Audit-logged.
        """
        readiness = None
        if body.readiness is not None:
            try:
                readiness = readiness_from_json(body.readiness)
            except (KeyError, TypeError, ValueError) as exc:
                raise HTTPException(status_code=422, detail=f"readiness: {exc}") from exc
        try:
            change = regimes.change(
                _choice(RegimeEvent, body.event),
                requested_by=body.requested_by,
                readiness=readiness,
            )
        except RegimeChangeRefused as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        return {"from": change.previous.value, "to": change.regime.value}

    @router.get("/api/migration", summary="Migration status: counts, run state, rate, ETA")
    def get_status() -> dict[str, Any]:
        """Meters by migration status, the run state, confirmed migrations per hour over the
        trailing hour and the ETA at that rate.
        """
        progress = desk.status()
        eta = progress.eta
        return {
            "regime": regimes.current().value,
            "run": progress.run.state.value,
            "run_changed_by": progress.run.changed_by,
            "counts": {s.name: n for s, n in sorted(progress.counts.items())},
            "total": progress.total,
            "migrated": progress.migrated,
            "remaining": progress.remaining,
            "rate_per_hour": progress.rate_per_hour,
            "eta": None if eta is None else eta.isoformat(),
        }

    @router.post("/api/migration/run", summary="Run control: start, pause, resume, drain, stop")
    def post_run(body: RunIn) -> dict[str, Any]:
        """Moves the run state (start, pause, resume, drain, stop); 409 for an event the run-
        control table does not allow. Audit-logged.
        """
        try:
            run = desk.control(_choice(RunEvent, body.event), actor=body.actor, note=body.note)
        except IllegalTransition as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        return {"run": run.state.value, "changed_by": run.changed_by}

    @router.get("/api/migration/exceptions", summary="The exceptions queue")
    def get_exceptions(
        after: Annotated[str | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    ) -> list[MeterView]:
        """Meters waiting for an operator (exceptions, holds, field visits) in EUI order, each with
        its reason, error and next review time.
        """
        records = desk.exceptions(after=None if after is None else _eui(after), limit=limit)
        return [meter_view(r) for r in records]

    @router.get("/api/migration/meters/{eui}", summary="One meter's migration record")
    def get_meter(eui: str) -> MeterView:
        """The meter's migration record: status, reason, next action and time, what is known of its
        transitionalCoS cell, attempts.
        """
        try:
            return meter_view(desk.meter(_eui(eui)))
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    @router.post("/api/migration/meters/{eui}/actions", summary="An operator action on a meter")
    def post_action(eui: str, body: ActionIn) -> MeterView:
        """Retry now, hold, release, field visit or resolve by hand; 409 when the meter's status
        does not allow it. Audit-logged with the actor and note.
        """
        action = ACTIONS.get(body.action)
        if action is None:
            raise HTTPException(status_code=422, detail=f"unknown action {body.action!r}")
        ineligible = None
        if body.ineligible is not None:
            try:
                ineligible = IneligibleReason[body.ineligible]
            except KeyError:
                raise HTTPException(status_code=422, detail="unknown ineligible reason") from None
        try:
            record = desk.act(
                _eui(eui), action, actor=body.actor, note=body.note, ineligible=ineligible
            )
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc
        except IllegalTransition as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        except InvalidMigrationInput as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        return meter_view(record)

    @router.get(
        "/api/emrr",
        summary="EMRR figures (overall and per supplier, or one supplier's meters only)",
        response_model=None,
    )
    def get_emrr(
        supplier: Annotated[str | None, Query(description="A supplier party ID")] = None,
        fmt: Annotated[str, Query(alias="format", pattern="^(json|csv)$")] = "json",
        as_of: Annotated[date | None, Query()] = None,
    ) -> Any:
        """EMRR counts (by category and ineligible reason), the daily series and the forecast, from
        counts aggregated by the supplier registered for each meter now. With supplier, that
        party's meters only (one object); without, the overall report and one per supplier (a
        list). format=csv gives one long table.
        """
        try:
            reports = desk.emrr_reports(
                suppliers=None if supplier is None else (supplier,), as_of=as_of
            )
        except (ReportInconsistent, InvalidMigrationInput) as exc:
            raise HTTPException(status_code=409, detail=str(exc)) from exc
        if fmt == "csv":
            return Response(render_csv(*reports), media_type="text/csv")
        values = [report_json(r) for r in reports]
        return values[0] if supplier is not None else values

    return router


__all__ = ["ACTIONS", "MeterView", "create_router", "meter_view"]
