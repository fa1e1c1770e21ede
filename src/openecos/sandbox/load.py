"""``load_sandbox``: a sandbox directory back as values the service and tools use.

Theory of operation: reads ``sandbox.json`` first (a directory without it is
not a sandbox, or an unfinished one), then the test PKI, a software key store
over the same PKI directory, the meter profile (derived device keys from the
manifest's seed, the PKI's policies) and, unless asked not to, every meter's
state from ``estate/meters.csv``. The store is named by URL, not opened:
the caller opens it (:meth:`Sandbox.open_store`) where and when it needs it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from openecos.device import MeterProfile, MeterState, sandbox_profile
from openecos.eui import Eui64, InvalidEui
from openecos.keys import KeyStoreError, SoftwareKeyStore, open_keystore
from openecos.sandbox.errors import SandboxError
from openecos.sandbox.estate import read_meter_states
from openecos.sandbox.manifest import SandboxManifest, read_manifest
from openecos.sandbox.plan import SandboxParty, SandboxUser
from openecos.smki import KeystoreError, TestPki, load_test_pki
from openecos.store import Store


@dataclass(frozen=True, slots=True, eq=False)
class Sandbox:
    """A loaded sandbox: its PKI, key store, meter profile and states, and its store's URL."""

    directory: Path
    manifest: SandboxManifest
    pki: TestPki
    store_url: str
    keystore: SoftwareKeyStore = field(repr=False)
    profile: MeterProfile = field(repr=False)
    meters: Mapping[Eui64, MeterState] = field(repr=False)

    def open_store(self) -> Store:
        return Store.open(self.store_url)

    def path(self, role: str) -> Path:
        """A file of the sandbox by its role in ``manifest.files`` (``"meters"``, ...)."""
        return self.directory / self.manifest.files[role]

    def party(self, name: str) -> SandboxParty:
        """A participant by party ID (any case), user ID (any EUI spelling) or MPID."""
        wanted = name.strip()
        for party in self.manifest.parties:
            if party.party_id.lower() == wanted.lower():
                return party
            if any(m.mpid == wanted.upper() for m in party.mpids):
                return party
        try:
            user_id = Eui64.parse(wanted)
        except InvalidEui:
            user_id = None
        for party in self.manifest.parties:
            if any(u.user_id == user_id for u in party.users):
                return party
        known = ", ".join(p.party_id for p in self.manifest.parties)
        raise SandboxError(f"no participant {name!r} in this sandbox (parties: {known})")

    def user(self, name: str) -> SandboxUser | None:
        """The user a user ID names, or ``None`` when ``name`` is not a user ID."""
        try:
            user_id = Eui64.parse(name)
        except InvalidEui:
            return None
        for party in self.manifest.parties:
            for user in party.users:
                if user.user_id == user_id:
                    return user
        return None


def keystore_for(directory: Path, manifest: SandboxManifest) -> SoftwareKeyStore:
    try:
        return open_keystore([directory / manifest.pki])
    except KeyStoreError as exc:
        raise SandboxError(f"{directory / manifest.pki}: {exc}") from None


def load_sandbox(directory: Path, *, meters: bool = True) -> Sandbox:
    """Reads a sandbox made by :func:`openecos.sandbox.create_sandbox`.

    ``meters=False`` skips the meter states (``Sandbox.meters`` is empty):
    tools that only need the PKI and the store start faster. Raises
    :class:`SandboxError`.
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    try:
        pki = load_test_pki(directory / manifest.pki)
    except KeystoreError as exc:
        raise SandboxError(f"{directory / manifest.pki}: {exc}") from None
    profile = sandbox_profile(pki, seed=manifest.device_key_seed)
    states: dict[Eui64, MeterState] = {}
    if meters:
        states = read_meter_states(directory / manifest.files["meters"], pki, profile)
    return Sandbox(
        directory,
        manifest,
        pki,
        manifest.store_url_in(directory),
        keystore_for(directory, manifest),
        profile,
        states,
    )
