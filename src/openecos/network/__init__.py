"""Delivery of GBCS messages to simulated meters: an in-process asyncio WAN.

:class:`SimulatedWan` carries command bytes to the meters of a :class:`Fleet`
and their responses and alerts back to a receiver, with latency, loss,
outages and meter-side faults from a :class:`WanConfig`, reproducibly from
its seed. It does no protocol work: the meters' rules are
:mod:`openecos.device`'s. :func:`run_virtual` runs a simulation on a loop
whose clock jumps to the next timer, so hours pass in milliseconds.
"""

from openecos.network.clock import Clock, LoopClock, VirtualTimeLoop, run_virtual
from openecos.network.config import Latency, MeterFault, MeterFaults, Outage, WanConfig
from openecos.network.wan import Delivery, Fleet, Receiver, SimulatedWan, WanStats

__all__ = [
    "Clock",
    "Delivery",
    "Fleet",
    "Latency",
    "LoopClock",
    "MeterFault",
    "MeterFaults",
    "Outage",
    "Receiver",
    "SimulatedWan",
    "VirtualTimeLoop",
    "WanConfig",
    "WanStats",
    "run_virtual",
]
