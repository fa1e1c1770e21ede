"""The simulated WAN: delivery, latency, loss, outages, meter faults, future-dated alerts.

Most tests run on a virtual-time loop (openecos.network.run_virtual), so
latencies and execution date-times are exact and cost no real time.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from openecos.device import OutputKind, Rejection, RejectionReason, commission_sandbox_meter
from openecos.eui import Eui64
from openecos.gbcs import (
    DecodeError,
    UpdateSecurityCredentialsAlert,
    UpdateSecurityCredentialsResponse,
    decode_frame,
    decode_payload,
)
from openecos.gbcs.codes import StatusCode
from openecos.network import (
    Delivery,
    Fleet,
    Latency,
    LoopClock,
    MeterFault,
    MeterFaults,
    Outage,
    SimulatedWan,
    WanConfig,
    run_virtual,
)
from tests.device.sandbox import DEVICE, NOW, Sandbox, sandbox

LATENCY = WanConfig(latency=Latency(fixed=2.0))


def _wan(
    box: Sandbox, config: WanConfig = LATENCY, extra: int = 0
) -> tuple[SimulatedWan, list[Delivery], list[tuple[Eui64, Rejection]]]:
    meters = [box.meter] + [
        commission_sandbox_meter(box.pki, Eui64.from_int(int(DEVICE) + i + 1), box.profile)
        for i in range(extra)
    ]
    received: list[Delivery] = []
    rejections: list[tuple[Eui64, Rejection]] = []
    wan = SimulatedWan(
        Fleet(box.profile, meters),
        received.append,
        clock=LoopClock(NOW),
        config=config,
        on_rejection=lambda device, rejection: rejections.append((device, rejection)),
    )
    return wan, received, rejections


def test_the_virtual_loop_jumps_over_waits() -> None:
    async def main() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        await asyncio.sleep(86_400)
        return loop.time() - start

    assert run_virtual(main()) == 86_400


def test_a_command_is_answered_after_the_latency_each_way() -> None:
    box = sandbox()

    async def main() -> list[Delivery]:
        wan, received, _ = _wan(box)
        wan.send(DEVICE, box.command())
        await wan.drain()
        return received

    (delivery,) = run_virtual(main())
    assert delivery.device == DEVICE and delivery.output.kind is OutputKind.RESPONSE
    assert delivery.sent_at == NOW + timedelta(seconds=2)
    assert delivery.received_at == NOW + timedelta(seconds=4)
    assert isinstance(
        decode_payload(decode_frame(delivery.message)), UpdateSecurityCredentialsResponse
    )


def test_a_future_dated_command_alerts_at_its_execution_time() -> None:
    box = sandbox()
    when = NOW + timedelta(days=30)

    async def main() -> tuple[list[Delivery], Fleet]:
        wan, received, _ = _wan(box)
        wan.send(DEVICE, box.command(execution=when))
        await wan.drain(timers=True)
        return received, wan.fleet

    (response, alert), fleet = run_virtual(main())
    assert response.output.kind is OutputKind.RESPONSE
    assert alert.output.kind is OutputKind.ALERT
    assert alert.sent_at == when
    assert isinstance(decode_payload(decode_frame(alert.message)), UpdateSecurityCredentialsAlert)
    assert fleet[DEVICE].pending is None


def test_total_loss_delivers_nothing() -> None:
    box = sandbox()

    async def main() -> tuple[list[Delivery], SimulatedWan]:
        wan, received, _ = _wan(box, WanConfig(loss=1.0))
        for seq in range(100, 105):
            wan.send(DEVICE, box.command(seq=seq))
        await wan.drain()
        return received, wan

    received, wan = run_virtual(main())
    assert received == [] and wan.stats.commands_lost == 5
    assert wan.fleet[DEVICE] == box.meter


def test_an_outage_loses_what_arrives_inside_it_only() -> None:
    box = sandbox()
    other = Eui64.from_int(int(DEVICE) + 1)
    outage = Outage(NOW, NOW + timedelta(minutes=10), device=DEVICE)

    async def main() -> list[Delivery]:
        wan, received, _ = _wan(box, WanConfig(latency=Latency(1.0), outages=(outage,)), extra=1)
        wan.send(DEVICE, box.command(seq=100))
        wan.send(other, box.command(seq=100, recipient=other))
        await asyncio.sleep(600)
        wan.send(DEVICE, box.command(seq=101))
        await wan.drain()
        return received

    received = run_virtual(main())
    assert [(d.device, d.output.originator_counter) for d in received] == [
        (other, 100),
        (DEVICE, 101),
    ]


def test_a_wan_wide_outage_loses_every_meter_s_messages() -> None:
    box = sandbox()
    outage = Outage(NOW, NOW + timedelta(hours=1))

    async def main() -> SimulatedWan:
        wan, _, _ = _wan(box, WanConfig(outages=(outage,)), extra=2)
        for i in range(3):
            device = Eui64.from_int(int(DEVICE) + i)
            wan.send(device, box.command(recipient=device))
        await wan.drain()
        return wan

    assert run_virtual(main()).stats.commands_lost == 3


def _run_with_fault(
    box: Sandbox, faults: MeterFaults, *commands: bytes
) -> tuple[list[Delivery], SimulatedWan]:
    async def main() -> tuple[list[Delivery], SimulatedWan]:
        wan, received, _ = _wan(box, WanConfig(faults=faults))
        for command in commands:
            wan.send(DEVICE, command)
            await wan.drain()
        await wan.drain(timers=True)
        return received, wan

    return run_virtual(main())


def test_a_busy_meter_answers_resources_busy_and_keeps_its_cells() -> None:
    box = sandbox()
    (delivery,), wan = _run_with_fault(box, MeterFaults(busy=1.0), box.command())
    response = decode_payload(decode_frame(delivery.message))
    assert isinstance(response, UpdateSecurityCredentialsResponse) and response.execution_outcome
    assert {o.status_code for o in response.execution_outcome.replacement_outcomes} == {
        StatusCode.RESOURCES_BUSY
    }
    assert wan.fleet[DEVICE] == box.meter


def test_no_response_means_the_meter_acted_but_nothing_came_back() -> None:
    box = sandbox()
    received, wan = _run_with_fault(box, MeterFaults(no_response=1.0), box.command())
    assert received == []
    assert wan.fleet[DEVICE].cells != box.meter.cells  # the outcome is unknown to the sender


def test_a_malformed_response_does_not_decode() -> None:
    box = sandbox()
    (delivery,), wan = _run_with_fault(box, MeterFaults(malformed_response=1.0), box.command())
    try:
        decode_payload(decode_frame(delivery.message))
    except DecodeError:
        pass
    else:
        raise AssertionError("a truncated response decoded")
    assert wan.fleet[DEVICE].cells != box.meter.cells


def test_a_reboot_loses_the_command_and_the_held_future_dated_one() -> None:
    box = sandbox()
    when = NOW + timedelta(days=1)

    async def main() -> tuple[list[Delivery], SimulatedWan]:
        wan, received, _ = _wan(box)
        wan.send(DEVICE, box.command(seq=100, execution=when))
        await wan.drain()
        wan.config = WanConfig(faults=MeterFaults(reboot=1.0))
        wan.send(DEVICE, box.command(seq=101))
        await wan.drain(timers=True)
        return received, wan

    received, wan = run_virtual(main())
    assert [d.output.kind for d in received] == [OutputKind.RESPONSE]  # no alert ever
    assert wan.fleet[DEVICE].pending is None
    assert wan.fleet[DEVICE].cells == box.meter.cells
    assert wan.stats.faults[MeterFault.REBOOT] == 1


def test_a_broken_meter_never_answers_again() -> None:
    box = sandbox()

    async def main() -> tuple[list[Delivery], SimulatedWan]:
        wan, received, _ = _wan(box, WanConfig(faults=MeterFaults(broken=1.0)))
        wan.send(DEVICE, box.command(seq=100))
        await wan.drain()
        wan.config = WanConfig()
        wan.send(DEVICE, box.command(seq=101))
        await wan.drain()
        return received, wan

    received, wan = run_virtual(main())
    assert received == [] and wan.fleet.is_broken(DEVICE)
    assert wan.stats.to_unknown_or_broken == 1


def test_rejections_are_reported_with_their_reason() -> None:
    box = sandbox()

    async def main() -> list[tuple[Eui64, Rejection]]:
        wan, received, rejections = _wan(box)
        wan.send(DEVICE, box.command(signer="supplier-b-ds"))
        await wan.drain()
        assert received == []
        return rejections

    ((device, rejection),) = run_virtual(main())
    assert device == DEVICE and rejection.reason is RejectionReason.SIGNATURE_INVALID


def _trace(seed: int, box: Sandbox) -> list[tuple[Eui64, int, OutputKind, float]]:
    config = WanConfig(latency=Latency(0.5, jitter=3.0), loss=0.3, seed=seed)

    async def main() -> list[tuple[Eui64, int, OutputKind, float]]:
        wan, received, _ = _wan(box, config, extra=9)
        for i in range(10):
            device = Eui64.from_int(int(DEVICE) + i)
            wan.send(device, box.command(recipient=device))
        await wan.drain()
        return [
            (
                d.device,
                d.output.originator_counter,
                d.output.kind,
                (d.received_at - NOW).total_seconds(),
            )
            for d in received
        ]

    return run_virtual(main())


def test_the_same_seed_gives_the_same_run_and_another_seed_another() -> None:
    box = sandbox()
    first = _trace(7, box)
    assert first == _trace(7, box)
    assert 0 < len(first) < 10  # some lost at 30 % each way, not all
    assert first != _trace(8, box)


def test_real_time_delivery_with_short_latency() -> None:
    box = sandbox()

    async def main() -> list[Delivery]:
        wan, received, _ = _wan(box, WanConfig(latency=Latency(0.001)))
        wan.send(DEVICE, box.command())
        await asyncio.wait_for(wan.drain(), timeout=5)
        return received

    (delivery,) = asyncio.run(main())
    assert delivery.output.kind is OutputKind.RESPONSE
