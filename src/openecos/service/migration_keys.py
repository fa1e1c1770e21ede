"""Device public keys for the migration engine, read a batch at a time.

Theory of operation. The engine needs two public keys of every meter it
migrates, both from the meter's device certificates in the inventory: the KA
key (the ACB's MAC on the 0x0106, by ECDH) and the DS key (the meter's signed
answer). :class:`~openecos.service.worker.DeviceKeyDirectory` reads them one
query and one SMKI parse at a time; a migration batch reads hundreds at once,
so :class:`MigrationDeviceKeys` adds :meth:`~MigrationDeviceKeys.prefetch`:
one query for both certificates of every meter in a batch, each read with
``cryptography`` (about 11 µs), falling back to the SMKI parser (about
125 µs) for the certificates ``cryptography`` refuses (some DCC test
certificates: docs/architecture.md, ``smki``). When a meter has several
certificates of one usage, the first by fingerprint is used, as
:meth:`DeviceKeyDirectory.public_key` does.

The keys are kept in a bounded table (a device certificate never changes, but
an estate of millions must not grow the process): the oldest half is dropped
when it is full, which at worst costs a second read of a key.
"""

from __future__ import annotations

from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage
from openecos.service.worker import DeviceKeyDirectory
from openecos.smki import CertificateError, SmkiCertificate
from openecos.store import Store, schema

_USAGES = (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_AGREEMENT)


def public_key_of(der: bytes) -> ec.EllipticCurvePublicKey:
    """The certificate's EC public key: ``cryptography`` first, the SMKI parser if it refuses."""
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except ValueError:
        key = None
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key
    return SmkiCertificate.from_der(der).public_key  # raises CertificateError saying why


class MigrationDeviceKeys(DeviceKeyDirectory):
    """A :class:`DeviceKeyDirectory` that reads a batch of meters' keys at once (module doc)."""

    def __init__(self, store: Store, *, capacity: int = 200_000) -> None:
        super().__init__(store)
        self._capacity = max(2, capacity)

    def prefetch(self, devices: Iterable[Eui64]) -> None:
        """Reads the DS and KA keys of ``devices`` not held yet, with one query."""
        wanted = sorted(
            {d for d in devices if any((d, u) not in self._cache for u in _USAGES)},
            key=lambda d: d.value,
        )
        if not wanted:
            return
        c = schema.certificates
        found: dict[tuple[Eui64, KeyUsage], bytes] = {}
        with self._store.engine.connect() as conn:
            among = (
                c.c.subject_eui == any_(bindparam(None, wanted, type_=ARRAY(c.c.subject_eui.type)))
                if conn.dialect.name == "postgresql"
                else c.c.subject_eui.in_(wanted)
            )
            query = (
                select(c.c.subject_eui, c.c.key_usage, c.c.der)
                .where(among, c.c.key_usage.in_(_USAGES))
                .order_by(c.c.fingerprint)
            )
            for subject, usage, der in conn.execute(query):
                found.setdefault((subject, usage), bytes(der))
        if len(self._cache) + len(found) > self._capacity:
            for slot in list(self._cache)[: len(self._cache) // 2]:
                del self._cache[slot]
        for slot, der in found.items():
            try:
                self._cache[slot] = public_key_of(der)
            except CertificateError:
                continue  # public_key() reads it again and says why

    def public_key(self, device: Eui64, usage: KeyUsage) -> ec.EllipticCurvePublicKey:
        key = self._cache.get((device, usage))
        if key is not None:
            return key
        return super().public_key(device, usage)


def prefetch_keys(directory: object, devices: Iterable[Eui64]) -> None:
    """Prefetches when ``directory`` can (tests may pass a plain directory)."""
    if isinstance(directory, MigrationDeviceKeys):
        directory.prefetch(devices)


__all__ = ["MigrationDeviceKeys", "prefetch_keys", "public_key_of"]
