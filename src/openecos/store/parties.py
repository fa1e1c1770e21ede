"""Parties, their DUIS user IDs and MPIDs, and the certificates the DCC knows.

The "split supplier" problem (ecos-domain.md §S): one supplier party may hold
several MPIDs, several user IDs and several XML-signing certificates. The
model therefore never assumes one-of-each: an MPID belongs to exactly one
party *through* one of that party's user IDs (foreign keys enforce that the
user belongs to the party and holds the MPID's market role), and a
certificate belongs to whoever its subject EUI is. "Does this certificate
belong to the requesting party?" is answered by comparing
:meth:`PartyRepository.party_of_user` for the two user IDs, never MPIDs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.exc import IntegrityError

from openecos.eui import Eui64
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.store import schema
from openecos.store._base import Repository, integrity_kind
from openecos.store.errors import DuplicateKey, NotFound, ReferenceMissing
from openecos.store.records import (
    KnownCertificate,
    Mpid,
    Party,
    PartyUser,
    normalise_issuer_name,
)

_p, _u, _r, _m, _c = (
    schema.parties,
    schema.party_users,
    schema.party_user_roles,
    schema.mpids,
    schema.certificates,
)


def _refused(exc: IntegrityError, what: str) -> Exception:
    if integrity_kind(exc) == "unique":
        return DuplicateKey(f"{what} already exists")
    return ReferenceMissing(f"{what}: {exc.orig}")


class PartyRepository(Repository):
    """Parties, user IDs (with roles) and MPIDs."""

    __slots__ = ()

    def add_party(self, party: Party) -> None:
        try:
            with self._db.write() as conn:
                conn.execute(insert(_p).values(party_id=party.party_id, name=party.name))
        except IntegrityError as exc:
            raise _refused(exc, f"party {party.party_id!r}") from exc

    def get_party(self, party_id: str) -> Party:
        with self._db.read() as conn:
            row = conn.execute(select(_p).where(_p.c.party_id == party_id)).first()
        if row is None:
            raise NotFound(f"no party {party_id!r}")
        return Party(party_id=row.party_id, name=row.name)

    def add_user(self, user: PartyUser) -> None:
        """Adds a user ID of an existing party, with the roles it may act in."""
        try:
            with self._db.write() as conn:
                conn.execute(insert(_u).values(user_id=user.user_id, party_id=user.party_id))
                conn.execute(
                    insert(_r), [{"user_id": user.user_id, "role": r} for r in sorted(user.roles)]
                )
        except IntegrityError as exc:
            raise _refused(exc, f"user {user.user_id}") from exc

    def get_user(self, user_id: Eui64) -> PartyUser:
        with self._db.read() as conn:
            users = self._users(conn, _u.c.user_id == user_id)
        if not users:
            raise NotFound(f"no user {user_id}")
        return users[0]

    def users_of(self, party_id: str) -> list[PartyUser]:
        """Every user ID of a party (more than one for a split supplier)."""
        with self._db.read() as conn:
            return self._users(conn, _u.c.party_id == party_id)

    def party_of_user(self, user_id: Eui64) -> Party:
        with self._db.read() as conn:
            row = conn.execute(
                select(_p).join(_u, _u.c.party_id == _p.c.party_id).where(_u.c.user_id == user_id)
            ).first()
        if row is None:
            raise NotFound(f"no user {user_id}")
        return Party(party_id=row.party_id, name=row.name)

    def add_mpid(self, mpid: Mpid) -> None:
        """Adds an MPID; refused unless its user is of its party and holds its role."""
        try:
            with self._db.write() as conn:
                conn.execute(
                    insert(_m).values(
                        mpid=mpid.mpid, party_id=mpid.party_id, user_id=mpid.user_id, role=mpid.role
                    )
                )
        except IntegrityError as exc:
            raise _refused(exc, f"MPID {mpid.mpid}") from exc

    def get_mpid(self, mpid: str) -> Mpid:
        with self._db.read() as conn:
            row = conn.execute(select(_m).where(_m.c.mpid == mpid)).first()
        if row is None:
            raise NotFound(f"no MPID {mpid!r}")
        return _mpid(row)

    def mpids_of(self, party_id: str) -> list[Mpid]:
        with self._db.read() as conn:
            rows = conn.execute(select(_m).where(_m.c.party_id == party_id).order_by(_m.c.mpid))
            return [_mpid(row) for row in rows]

    def mpids_of_user(self, user_id: Eui64) -> list[Mpid]:
        with self._db.read() as conn:
            rows = conn.execute(select(_m).where(_m.c.user_id == user_id).order_by(_m.c.mpid))
            return [_mpid(row) for row in rows]

    @staticmethod
    def _users(conn: Any, where: Any) -> list[PartyUser]:
        rows = conn.execute(
            select(_u.c.user_id, _u.c.party_id, _r.c.role)
            .join(_r, _r.c.user_id == _u.c.user_id)
            .where(where)
            .order_by(_u.c.user_id)
        ).all()
        grouped: dict[Eui64, tuple[str, set[Any]]] = {}
        for row in rows:
            grouped.setdefault(row.user_id, (row.party_id, set()))[1].add(row.role)
        return [
            PartyUser(user_id=user, party_id=party, roles=frozenset(roles))
            for user, (party, roles) in grouped.items()
        ]


def _mpid(row: Row[Any]) -> Mpid:
    return Mpid(mpid=row.mpid, party_id=row.party_id, user_id=row.user_id, role=row.role)


def _certificate(row: Row[Any]) -> KnownCertificate:
    return KnownCertificate(
        der=bytes(row.der),
        issuer_name=row.issuer_name,
        serial=int(row.serial),
        subject_eui=row.subject_eui,
        role=row.role,
        key_usage=row.key_usage,
    )


class CertificateRepository(Repository):
    """SMKI certificates known to the DCC, by (issuer, serial) and by subject.

    XMLDSig KeyInfo carries only ``X509IssuerSerial`` (docs/duis-xmldsig-smki.md
    §1), so signature verification resolves the certificate here.
    """

    __slots__ = ()

    def add(self, certificate: KnownCertificate) -> None:
        """Stores a certificate; adding the very same record again changes nothing.

        Raises DuplicateKey if another certificate has the same issuer and
        serial, or the same DER is stored with other fields.
        """
        values = {
            "fingerprint": certificate.fingerprint,
            "issuer_key": normalise_issuer_name(certificate.issuer_name),
            "issuer_name": certificate.issuer_name,
            "serial": str(certificate.serial),
            "subject_eui": certificate.subject_eui,
            "role": certificate.role,
            "key_usage": certificate.key_usage,
            "der": certificate.der,
        }
        try:
            with self._db.write() as conn:
                known = conn.execute(
                    select(_c).where(_c.c.fingerprint == certificate.fingerprint)
                ).first()
                if known is None:
                    conn.execute(insert(_c).values(**values))
                elif _certificate(known) != certificate:
                    raise DuplicateKey("this certificate is stored with other fields")
        except IntegrityError as exc:
            raise DuplicateKey(
                f"another certificate has issuer {certificate.issuer_name!r}"
                f" and serial {certificate.serial}"
            ) from exc

    def by_issuer_serial(self, issuer_name: str, serial: int) -> KnownCertificate:
        """The certificate an XMLDSig ``X509IssuerSerial`` names; raises NotFound."""
        key = normalise_issuer_name(issuer_name)
        with self._db.read() as conn:
            row = conn.execute(
                select(_c).where(_c.c.issuer_key == key, _c.c.serial == str(serial))
            ).first()
        if row is None:
            raise NotFound(f"no certificate {issuer_name!r} / {serial}")
        return _certificate(row)

    def by_fingerprint(self, fingerprint: bytes) -> KnownCertificate:
        with self._db.read() as conn:
            row = conn.execute(select(_c).where(_c.c.fingerprint == fingerprint)).first()
        if row is None:
            raise NotFound(f"no certificate with SHA-256 {fingerprint.hex()}")
        return _certificate(row)

    def by_subject(
        self,
        subject_eui: Eui64,
        role: RemotePartyRole | None = None,
        key_usage: KeyUsage | None = None,
    ) -> Sequence[KnownCertificate]:
        """Every certificate of an entity, optionally of one role and key usage."""
        query = select(_c).where(_c.c.subject_eui == subject_eui)
        if role is not None:
            query = query.where(_c.c.role == role)
        if key_usage is not None:
            query = query.where(_c.c.key_usage == key_usage)
        with self._db.read() as conn:
            return [_certificate(r) for r in conn.execute(query.order_by(_c.c.fingerprint))]
