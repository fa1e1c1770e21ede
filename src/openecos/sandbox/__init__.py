"""A sandbox: a test PKI, a populated store and a simulated meter estate, in one directory.

``create_sandbox(directory, meters=N, ecos_fraction=F, seed=S)`` writes it;
``load_sandbox(directory)`` reads it back as a :class:`Sandbox` (PKI, key
store, store URL, meter profile and states, manifest). The service, the CLI
and the tests run against it. Everything is a file a person can open::

    DIR/
      sandbox.json                  the manifest (openecos.sandbox.manifest): parameters,
                                    paths, store URL, device-key seed, participants,
                                    the DCC-side key names, counts
      pki/                          the test PKI (openecos.smki write_test_pki): pki.json,
                                    certs/<name>.pem, keys/<name>.key.pem; usable as
                                    --keystore DIR/pki
      store.db                      the SQLite store (absent when a store URL was given)
      registration/participants.csv parties, user IDs, roles, MPIDs (store CSV format)
      registration/registrations.csv  MPxN -> supplier MPID from 2024-04-01 (store CSV format)
      inventory/devices.csv         the Smart Metering Inventory (store CSV format)
      inventory/trust-anchors.csv   the cells the DCC believes each meter holds (PKI names)
      inventory/device-certificates.csv  each meter's DS and KA certificates (base64 DER)
      estate/meters.csv             each simulated meter's cells, seq numbers, alert counter

Participants (``plan.SANDBOX_PARTICIPANTS``): supplier A, a split supplier with
two user IDs (90B3D51F40010000, IS, MPID OEAE; 90B3D51F40010100, GS, MPID
OEAG); supplier B (90B3D51F40020000, IS and GS, MPIDs OEBE and OEBG); the
network operator (90B3D51F40030000); the DCC (ACB 90B3D51F40000002). The TCoS
Party (…04) and ECoS Party (…05) sign CS02b with the PKI entries ``tcos-ds``
and ``ecos-ds``.

Meters are ESME (MPANs with valid check digits) and GSME (ten-digit MPRNs),
Commissioned, registered to supplier A or B from 2024-04-01. Each holds the
PKI root, its supplier's DS, KA and KA top-up certificates (the user ID that
holds the MPID), the network operator's DS and KA, the ACB's DS and KA, and
in its transitionalCoS cell ``tcos-ds`` or, for the ECoS fraction, ``ecos-ds``
(credential state ``ECOS`` in the inventory). The meters' own keys are derived
from the manifest's seed (``openecos.device.DerivedDeviceKeys``) and never
written.
"""

from openecos.sandbox.create import (
    DEFAULT_ECOS_FRACTION,
    DEFAULT_METERS,
    DEFAULT_SEED,
    create_sandbox,
    device_key_seed,
)
from openecos.sandbox.errors import SandboxError
from openecos.sandbox.estate import read_meter_states, write_meter_states
from openecos.sandbox.load import Sandbox, load_sandbox
from openecos.sandbox.manifest import FILES, MANIFEST, SandboxManifest, read_manifest
from openecos.sandbox.plan import (
    SANDBOX_PARTICIPANTS,
    DccIdentities,
    PlannedMeter,
    SandboxMpid,
    SandboxParty,
    SandboxUser,
    is_valid_mpan,
    mpan_check_digit,
    plan_estate,
)

__all__ = [
    "DEFAULT_ECOS_FRACTION",
    "DEFAULT_METERS",
    "DEFAULT_SEED",
    "FILES",
    "MANIFEST",
    "SANDBOX_PARTICIPANTS",
    "DccIdentities",
    "PlannedMeter",
    "Sandbox",
    "SandboxError",
    "SandboxManifest",
    "SandboxMpid",
    "SandboxParty",
    "SandboxUser",
    "create_sandbox",
    "device_key_seed",
    "is_valid_mpan",
    "load_sandbox",
    "mpan_check_digit",
    "plan_estate",
    "read_manifest",
    "read_meter_states",
    "write_meter_states",
]
