"""``openecos.service``: the change-of-supplier runtime that wires every part together.

- :mod:`~openecos.service.intake`: signed DUIS in, request recorded, then I99;
- :mod:`~openecos.service.worker`: checks, TAD, routing, durable counter,
  sign and MAC, record, send (crash-safe, any number of processes);
- :mod:`~openecos.service.responses`: meters' answers applied exactly once,
  DUIS responses and alerts to the outboxes;
- :mod:`~openecos.service.estate`: the simulated meters, persisted in the store;
- :mod:`~openecos.service.quarantine`: operators' release of TAD-held requests;
- :mod:`~openecos.service.mmc_view`: a request's outcome as MMC XML, on demand;
- :mod:`~openecos.service.runtime`: configuration and the worker loop.

Quickstart::

    from openecos.service import ServiceConfig, open_runtime
    runtime = open_runtime(ServiceConfig(store_url, pki_dir, xsd_dir))
    runtime.start()                      # background worker loop and simulated WAN
    ack = runtime.intake.receive(signed_xml).acknowledgement
    runtime.close()
"""

from openecos.service.clock import Clock, ManualClock, SystemClock
from openecos.service.estate import PersistentFleet, SimulatedEstate, inventory_commissioner
from openecos.service.identities import DccKeyNames, ServiceKeys, ServiceTrust, resolve_service_keys
from openecos.service.intake import REQUEST_QUEUE, Intake, IntakeResult
from openecos.service.meter_codec import MeterStateCorrupt, decode_meter, encode_meter
from openecos.service.mmc_view import mmc_outcome
from openecos.service.quarantine import HeldRequest, NotHeld, QuarantineDesk
from openecos.service.responses import ResponseProcessor
from openecos.service.runtime import (
    DEFAULT_DEVICE_KEY_SEED,
    ServiceConfig,
    ServiceRuntime,
    default_worker_id,
    open_runtime,
)
from openecos.service.worker import CosWorker, DeviceKeyDirectory, WorkerSettings

__all__ = [
    "DEFAULT_DEVICE_KEY_SEED",
    "REQUEST_QUEUE",
    "Clock",
    "CosWorker",
    "DccKeyNames",
    "DeviceKeyDirectory",
    "HeldRequest",
    "Intake",
    "IntakeResult",
    "ManualClock",
    "MeterStateCorrupt",
    "NotHeld",
    "PersistentFleet",
    "QuarantineDesk",
    "ResponseProcessor",
    "ServiceConfig",
    "ServiceKeys",
    "ServiceRuntime",
    "ServiceTrust",
    "SimulatedEstate",
    "SystemClock",
    "WorkerSettings",
    "decode_meter",
    "default_worker_id",
    "encode_meter",
    "inventory_commissioner",
    "mmc_outcome",
    "open_runtime",
    "resolve_service_keys",
]
