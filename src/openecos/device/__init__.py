"""A simulated GBCS meter for CS02b "Update Security Credentials" and CS02a reads.

Sans-IO: a meter is a :class:`MeterState` value; :func:`handle` takes it, the
bytes that arrived, the time (aware UTC) and the fleet's shared
:class:`MeterProfile` and returns a :class:`Transition` (next state, messages
to send, or why the input was discarded). :func:`advance` lets time pass
(future-dated commands execute and alert); :func:`reboot` loses the held
command. The rules are in :mod:`openecos.device.machine` (the transition
table), :mod:`openecos.device.checks` (authentication) and
:mod:`openecos.device.rules` (modes and certificates).

Quickstart (``command`` built with :func:`openecos.gbcs.build_command`, MACed
for the device KA key ``profile.keys.public_key(device, KeyUsage.KEY_AGREEMENT)``)::

    from datetime import UTC, datetime
    from openecos.eui import Eui64
    from openecos.smki import sandbox_pki
    from openecos.device import commission_sandbox_meter, handle, sandbox_profile

    pki = sandbox_pki()
    profile = sandbox_profile(pki)
    device = Eui64.parse("00DB000000000001")
    meter = commission_sandbox_meter(pki, device, profile)
    transition = handle(meter, command, datetime.now(UTC), profile)
    meter = transition.state  # send transition.outputs; log transition.rejection
"""

from openecos.device.cells import (
    ACB_DS_CELL,
    ACB_KA_CELL,
    METER_CELLS,
    NETWORK_OPERATOR_DS_CELL,
    NETWORK_OPERATOR_KA_CELL,
    RECOVERY_CELL,
    ROOT_CELL,
    SEQ_NUMBER_ROLES,
    SUPPLIER_DS_CELL,
    SUPPLIER_KA_CELL,
    SUPPLIER_KA_TOP_UP_CELL,
    TRANSITIONAL_COS_CELL,
    WAN_PROVIDER_CELL,
    AnchorCertificate,
    CertificateCache,
)
from openecos.device.commissioning import (
    DeviceCertificates,
    commission_meter,
    commission_sandbox_meter,
    sandbox_cells,
    sandbox_device_certificates,
    sandbox_profile,
)
from openecos.device.keys import (
    DerivedDeviceKeys,
    DeviceKey,
    DeviceKeys,
    DeviceKeyTable,
    UnknownDevice,
)
from openecos.device.machine import (
    TRANSITIONS,
    Event,
    Phase,
    advance,
    broken,
    handle,
    phase_of,
    reboot,
)
from openecos.device.rules import MODE_RULES, ModeRule
from openecos.device.state import (
    MeterOutput,
    MeterProfile,
    MeterState,
    OutputKind,
    PendingCommand,
    PlannedReplacement,
    Rejection,
    RejectionReason,
    Transition,
)

__all__ = [
    "ACB_DS_CELL",
    "ACB_KA_CELL",
    "METER_CELLS",
    "MODE_RULES",
    "NETWORK_OPERATOR_DS_CELL",
    "NETWORK_OPERATOR_KA_CELL",
    "RECOVERY_CELL",
    "ROOT_CELL",
    "SEQ_NUMBER_ROLES",
    "SUPPLIER_DS_CELL",
    "SUPPLIER_KA_CELL",
    "SUPPLIER_KA_TOP_UP_CELL",
    "TRANSITIONAL_COS_CELL",
    "TRANSITIONS",
    "WAN_PROVIDER_CELL",
    "AnchorCertificate",
    "CertificateCache",
    "DerivedDeviceKeys",
    "DeviceCertificates",
    "DeviceKey",
    "DeviceKeyTable",
    "DeviceKeys",
    "Event",
    "MeterOutput",
    "MeterProfile",
    "MeterState",
    "ModeRule",
    "OutputKind",
    "PendingCommand",
    "Phase",
    "PlannedReplacement",
    "Rejection",
    "RejectionReason",
    "Transition",
    "UnknownDevice",
    "advance",
    "broken",
    "commission_meter",
    "commission_sandbox_meter",
    "handle",
    "phase_of",
    "reboot",
    "sandbox_cells",
    "sandbox_device_certificates",
    "sandbox_profile",
]
