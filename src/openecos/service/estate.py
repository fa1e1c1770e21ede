"""The sandbox's simulated meters, kept in the store so they survive restarts.

Theory of operation. A meter's rules are :mod:`openecos.device`'s; this module
only decides where a meter's memory lives. Every input to a meter (a command
arriving, time passing a held command's execution date-time, a reboot) is
one database transaction: lock the meter's row, decode its state
(:mod:`openecos.service.meter_codec`), apply the device transition, store the
new state *and the meter's outputs* (``sim_meter_outputs``), commit. So:

* a service killed at any instant leaves every meter either before or after
  an input, never between its new state and its answer;
* any service process on the database can deliver to any meter, and two
  deliveries to one meter serialise on its row lock;
* a held future-dated command is found again after a restart through the
  row's ``due_at`` (:meth:`SimulatedEstate.advance_due`), whichever process
  (or none) had a timer for it.

Durability. A meter's transaction commits without waiting for the disk
flush (``Store.transaction(durable=False)``): it survives a crash of the
service like any other, and the write-ahead log keeps it in order, so the
service's own records (always flushed) that follow from a meter's answer
carry that answer to disk with them. Only a power loss can undo a meter's
latest inputs, and then it is as if the commands had not arrived: the
service resends them. The service's invariants never rest on a meter's
flush; a real meter's memory is not in our database at all.

A meter is *commissioned lazily*: the first input to a device that has no
row builds its state from the inventory's trust-anchor cells (what the DCC
believes the meter holds, which for a new sandbox meter is the truth), so a
sandbox of many thousands of meters costs nothing until a meter is used.
A device with no cells in the inventory is not on the simulated network.

:class:`PersistentFleet` presents the estate as an
:class:`openecos.network.Fleet`, so :class:`openecos.network.SimulatedWan`
carries commands to it with its latency, loss, outages and busy faults. The
meter's outputs are durable from the moment the meter sends them; the WAN's
return leg is used only as the "something arrived" signal (the fleet hands
the WAN no outputs), so its loss and corruption faults apply to commands only.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from openecos.device import (
    METER_CELLS,
    MeterProfile,
    MeterState,
    Transition,
    advance,
    commission_meter,
    handle,
    reboot,
)
from openecos.eui import Eui64
from openecos.gbcs.cs02b import TrustAnchorCellIdentifier
from openecos.network import Fleet
from openecos.service.meter_codec import decode_meter, encode_meter
from openecos.store import NotFound, Repositories, SimulatedMeterRow, Store

#: Builds a meter that has no stored state yet, or None if it is not on the network.
Commissioner = Callable[[Repositories, Eui64], MeterState | None]


def inventory_commissioner(profile: MeterProfile) -> Commissioner:
    """Commissions a meter from the inventory's trust-anchor cells."""
    known = set(METER_CELLS)

    def commission(repos: Repositories, device: Eui64) -> MeterState | None:
        try:
            repos.devices.get(device)
        except NotFound:
            return None
        cells = {
            TrustAnchorCellIdentifier(a.role, a.key_usage, a.cell_usage): a.certificate_der
            for a in repos.devices.trust_anchors(device)
        }
        cells = {cell: der for cell, der in cells.items() if cell in known}
        if not cells:
            return None
        return commission_meter(device, cells=cells, certificates=profile.certificates)

    return commission


class SimulatedEstate:
    """Simulated meters persisted in a :class:`~openecos.store.Store` (see module doc)."""

    def __init__(
        self,
        store: Store,
        profile: MeterProfile,
        commission: Commissioner | None = None,
    ) -> None:
        self.store = store
        self.profile = profile
        self._commission = commission or inventory_commissioner(profile)
        self._ders: dict[bytes, bytes] = {}

    # -- inputs -------------------------------------------------------------------------------

    def deliver(
        self, device: Eui64, message: bytes, now: datetime, *, busy: bool = False
    ) -> Transition | None:
        """A command reaches ``device``; None when no such meter is on the network."""
        return self._step(device, now, lambda s: handle(s, message, now, self.profile, busy=busy))

    def deliver_with(
        self, device: Eui64, now: datetime, apply: Callable[[MeterState], Transition]
    ) -> Transition | None:
        """A command reaches ``device`` and ``apply`` is the meter's reaction (fault
        injection, :mod:`openecos.service.migration_delivery`); None when no such meter."""
        return self._step(device, now, apply)

    def advance(self, device: Eui64, now: datetime) -> Transition | None:
        """Time passes for ``device`` (its held command runs if due)."""
        return self._step(device, now, lambda s: advance(s, now, self.profile))

    def reboot(self, device: Eui64, now: datetime) -> Transition | None:
        return self._step(device, now, lambda s: reboot(s, now, self.profile))

    def break_meter(self, device: Eui64, now: datetime) -> None:
        self._step(device, now, lambda s: Transition(s), broken=True)

    def advance_due(self, now: datetime, *, limit: int = 100) -> int:
        """Runs every held command due at ``now``; returns how many meters were advanced."""
        # A broken meter stays due (it never runs its command): it is not counted, so the
        # worker loop does not spin on it.
        devices = self.store.estate.due(now, limit=limit)
        return sum(self.advance(device, now) is not None for device in devices)

    # -- reading ------------------------------------------------------------------------------

    def state(self, device: Eui64) -> MeterState | None:
        """The meter's current state (commissioned from the inventory if never used)."""
        row = self.store.estate.get(device)
        if row is None:
            with self.store.transaction() as tx:
                return self._commission(tx, device)
        return self._decode(row, lambda fp: self.store.estate.certificate(fp))

    def is_known(self, device: Eui64) -> bool:
        row = self.store.estate.get(device)
        if row is not None:
            return not row.broken
        return self.state(device) is not None

    # -- the transaction ----------------------------------------------------------------------

    def _decode(self, row: SimulatedMeterRow, fetch: Callable[[bytes], bytes]) -> MeterState:
        def certificate(fp: bytes) -> bytes:
            der = self._ders.get(fp)
            if der is None:
                der = fetch(fp)
                self._ders[fp] = der
            return der

        return decode_meter(row.state, certificate, self.profile.certificates)

    def _step(
        self,
        device: Eui64,
        now: datetime,
        apply: Callable[[MeterState], Transition],
        *,
        broken: bool = False,
    ) -> Transition | None:
        # Not flushed to disk before returning (see the module docstring, "Durability").
        with self.store.transaction(durable=False) as tx:
            row = tx.estate.lock(device)
            state: MeterState | None = None
            if row is None:
                fresh = self._commission(tx, device)
                if fresh is None:
                    return None
                blob, certificates = encode_meter(fresh)
                for fp, der in certificates.items():
                    if fp not in self._ders:  # shared certificates are stored once
                        tx.estate.put_certificate(der)
                if tx.estate.create(device, blob, at=now):
                    state = fresh  # just written: no need to read it back
                else:  # another process commissioned it first: use its row
                    row = tx.estate.lock(device)
                    if row is None:  # pragma: no cover - it exists, we were told
                        return None
            if state is None:
                assert row is not None
                if row.broken:
                    return None
                state = self._decode(row, tx.estate.certificate)
            transition = apply(state)
            blob, certificates = encode_meter(transition.state)
            for fp, der in certificates.items():
                if fp not in self._ders:
                    tx.estate.put_certificate(der)
            pending = transition.state.pending
            tx.estate.save(
                device,
                blob,
                at=now,
                due_at=None if pending is None else pending.execution_date_time,
                broken=broken,
            )
            for output in transition.outputs:
                tx.estate.add_output(
                    device=device,
                    kind=output.kind.value,
                    recipient=output.recipient,
                    originator_counter=output.originator_counter,
                    message=output.message,
                    at=now,
                )
        self._ders.update(certificates)
        return transition


class PersistentFleet(Fleet):
    """The estate seen as a :class:`~openecos.network.Fleet` by the simulated WAN.

    Transitions are persisted with their outputs by the estate; the WAN gets
    them without outputs (see the module docstring) and ``on_output`` is
    called instead, to wake whoever processes meter outputs.
    """

    def __init__(
        self,
        estate: SimulatedEstate,
        *,
        now: Callable[[], datetime],
        on_output: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(estate.profile)
        self.estate = estate
        self._now = now
        self._on_output = on_output
        # The WAN asks "known?", "broken?", delivers, then reads the new state, in one
        # synchronous run: what the previous question read is reused by the next one
        # (the same instant, the same thread) instead of read again.
        self._row_seen: tuple[Eui64, SimulatedMeterRow | None] | None = None
        self._last_state: MeterState | None = None

    def __contains__(self, device: object) -> bool:
        if not isinstance(device, Eui64):
            return False
        row = self.estate.store.estate.get(device)
        self._row_seen = (device, row)
        if row is not None:
            return not row.broken
        return self.estate.state(device) is not None

    def __getitem__(self, device: Eui64) -> MeterState:
        last, self._last_state = self._last_state, None
        if last is not None and last.device == device:
            return last
        state = self.estate.state(device)
        if state is None:
            raise KeyError(device)
        return state

    def is_broken(self, device: Eui64) -> bool:
        seen, self._row_seen = self._row_seen, None
        row = seen[1] if seen is not None and seen[0] == device else None
        if seen is None or seen[0] != device:
            row = self.estate.store.estate.get(device)
        return row is not None and row.broken

    def break_meter(self, device: Eui64) -> None:
        self.estate.break_meter(device, self._now())

    def _quiet(self, device: Eui64, transition: Transition | None) -> Transition:
        if transition is None:
            raise KeyError(device)
        if transition.outputs and self._on_output is not None:
            self._on_output()
        self._last_state = transition.state
        return Transition(transition.state, (), transition.rejection)

    def handle(
        self, device: Eui64, message: bytes, now: datetime, *, busy: bool = False
    ) -> Transition:
        return self._quiet(device, self.estate.deliver(device, message, now, busy=busy))

    def advance(self, device: Eui64, now: datetime) -> Transition:
        return self._quiet(device, self.estate.advance(device, now))

    def reboot(self, device: Eui64, now: datetime) -> Transition:
        return self._quiet(device, self.estate.reboot(device, now))
