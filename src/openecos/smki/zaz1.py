"""The ZAZ1 key store of DCC Boxed as a source of certificates and keys.

Theory of operation: ``keystore.json`` (docs/duis-xmldsig-smki.md §3.2) maps
``{eui16hex: {"digitalSignature"|"keyAgreement": {serial decimal: {certificate,
privateKey, role, name}}}}``. ``parse_zaz1_keystore`` turns that document into
typed entries and cross-checks each against its certificate (EUI, usage,
serial, role), so a mislabelled entry is an error, not a surprise later.
``load_zaz1_keystore`` is the file-reading edge; it takes the path from the
caller (the reference material lives outside the package).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from openecos.eui import Eui64, InvalidEui
from openecos.gbcs.codes import KeyUsage, RemotePartyRole
from openecos.smki.certificate import SmkiCertificate
from openecos.smki.errors import CertificateError, KeystoreError


@dataclass(frozen=True, slots=True)
class Zaz1Entry:
    """One keystore entry: its name, identity, certificate view and private key PEM."""

    name: str
    eui: Eui64
    key_usage: KeyUsage
    role: RemotePartyRole
    certificate: SmkiCertificate
    private_key_pem: bytes


def parse_zaz1_keystore(document: Mapping[str, Any]) -> tuple[Zaz1Entry, ...]:
    """Typed entries of a parsed ``keystore.json``, sorted by name."""
    if not isinstance(document, Mapping):
        raise KeystoreError("keystore is not a JSON object")
    entries: list[Zaz1Entry] = []
    for eui_text, by_usage in document.items():
        try:
            eui = Eui64.parse(eui_text)
        except InvalidEui:
            raise KeystoreError(f"key {eui_text!r} is not an EUI-64") from None
        if not isinstance(by_usage, Mapping):
            raise KeystoreError(f"{eui_text}: not an object")
        for usage_text, by_serial in by_usage.items():
            try:
                usage = KeyUsage(usage_text)
            except ValueError:
                raise KeystoreError(f"{eui_text}: unknown key usage {usage_text!r}") from None
            if not isinstance(by_serial, Mapping):
                raise KeystoreError(f"{eui_text}/{usage_text}: not an object")
            for serial_text, raw in by_serial.items():
                entries.append(_entry(eui, usage, serial_text, raw))
    return tuple(sorted(entries, key=lambda e: e.name))


def load_zaz1_keystore(path: Path) -> tuple[Zaz1Entry, ...]:
    """Reads and parses a ZAZ1 ``keystore.json`` file."""
    try:
        document = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"cannot read {path}: {exc}") from None
    return parse_zaz1_keystore(document)


def _entry(eui: Eui64, usage: KeyUsage, serial_text: str, raw: Any) -> Zaz1Entry:
    where = f"{eui.hex}/{usage.value}/{serial_text}"
    if not isinstance(raw, Mapping):
        raise KeystoreError(f"{where}: not an object")
    try:
        name, certificate_pem, key_pem, role_number = (
            raw["name"],
            raw["certificate"],
            raw["privateKey"],
            raw["role"],
        )
    except KeyError as exc:
        raise KeystoreError(f"{where}: missing {exc.args[0]!r}") from None
    if not (
        isinstance(name, str) and isinstance(certificate_pem, str) and isinstance(key_pem, str)
    ):
        raise KeystoreError(f"{where}: name, certificate and privateKey are strings")
    try:
        certificate = SmkiCertificate.from_pem(certificate_pem)
        role = RemotePartyRole(role_number)
    except (CertificateError, ValueError) as exc:
        raise KeystoreError(f"{where} ({name}): {exc}") from None
    mismatches = [
        label
        for label, ok in (
            ("serial", serial_text.isdigit() and int(serial_text) == certificate.serial),
            ("EUI", certificate.entity_eui == eui),
            ("key usage", certificate.key_usage is usage),
            ("role", certificate.role is role),
        )
        if not ok
    ]
    if mismatches:
        raise KeystoreError(f"{where} ({name}): certificate disagrees on {', '.join(mismatches)}")
    return Zaz1Entry(name, eui, usage, role, certificate, key_pem.encode())
