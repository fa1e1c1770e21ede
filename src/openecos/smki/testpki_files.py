"""A test PKI on disk: PEM files a person can open, and one index, ``pki.json``.

Theory of operation: this is the I/O edge of the test PKI. ``write_test_pki``
writes ``certs/<name>.pem``, ``keys/<name>.key.pem`` (unencrypted PKCS#8) and
``pki.json``; ``load_test_pki`` reads them back into an equal ``TestPki``.
``pki.json`` is read by other parts (``openecos.keys``) and has exactly this
shape, format ``openecos-test-pki/1``::

    {"format": "openecos-test-pki/1",
     "entries": [{"name": "supplier-a-ds", "kind": "root"|"ca"|"organisation"|"device",
                  "eui": "90B3D51F40010000" or null, "role": 2 or null,
                  "key_usage": "digitalSignature"|"keyAgreement"|"keyCertSign",
                  "cell_usage": 0|1|null, "serial": "<hex>",
                  "certificate": "certs/<name>.pem",
                  "private_key": "keys/<name>.key.pem" or null}]}

The root comes first, then the organisation CA (``organisation-ca``), the
device CA (``device-ca``) and the issued entries in minting order. ``eui`` is
the entity EUI of an organisation certificate or the device EUI of a device
certificate; ``role`` is the OU (0 for the root, 7 for the organisation CA).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from openecos.gbcs.codes import CellUsage
from openecos.smki.certificate import SmkiCertificate
from openecos.smki.errors import CertificateError, KeystoreError
from openecos.smki.testpki import PkiEntry, PkiEntryKind, TestPki

FORMAT = "openecos-test-pki/1"
INDEX = "pki.json"
_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def pki_index(pki: TestPki) -> dict[str, Any]:
    """The ``pki.json`` document for ``pki`` (pure; ``write_test_pki`` writes it)."""
    return {"format": FORMAT, "entries": [_index_row(e) for e in pki.all_entries]}


def _index_row(entry: PkiEntry) -> dict[str, Any]:
    eui = entry.eui
    return {
        "name": entry.name,
        "kind": entry.kind.value,
        "eui": None if eui is None else eui.hex,
        "role": None if entry.role is None else int(entry.role),
        "key_usage": entry.key_usage_name,
        "cell_usage": None if entry.cell_usage is None else int(entry.cell_usage),
        "serial": entry.certificate.serial_hex,
        "certificate": f"certs/{entry.name}.pem",
        "private_key": None if entry.private_key_der is None else f"keys/{entry.name}.key.pem",
    }


def write_test_pki(pki: TestPki, directory: Path) -> Path:
    """Writes the PKI under ``directory`` (created if needed); returns the index path."""
    for entry in pki.all_entries:
        if not _SAFE_NAME.fullmatch(entry.name):
            raise KeystoreError(f"entry name not usable as a file name: {entry.name!r}")
    (directory / "certs").mkdir(parents=True, exist_ok=True)
    (directory / "keys").mkdir(exist_ok=True)
    for entry in pki.all_entries:
        (directory / "certs" / f"{entry.name}.pem").write_bytes(entry.certificate.pem)
        pem = entry.private_key_pem
        if pem is not None:
            key_path = directory / "keys" / f"{entry.name}.key.pem"
            key_path.write_bytes(pem)
            key_path.chmod(0o600)
    index = directory / INDEX
    index.write_text(json.dumps(pki_index(pki), indent=2) + "\n")
    return index


def load_test_pki(directory: Path) -> TestPki:
    """Reads a directory written by ``write_test_pki``; raises ``KeystoreError`` if malformed."""
    try:
        document = json.loads((directory / INDEX).read_text())
    except (OSError, ValueError) as exc:
        raise KeystoreError(f"cannot read {directory / INDEX}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise KeystoreError(f"{directory / INDEX}: not {FORMAT}")
    rows = document.get("entries")
    if not isinstance(rows, list):
        raise KeystoreError(f"{directory / INDEX}: entries is not a list")
    entries = [_load_entry(directory, row) for row in rows]
    by_name = {e.name: e for e in entries}
    try:
        root, organisation_ca, device_ca = (
            by_name[n] for n in ("root", "organisation-ca", "device-ca")
        )
    except KeyError as exc:
        raise KeystoreError(f"{directory / INDEX}: no {exc.args[0]!r} entry") from None
    issued = tuple(e for e in entries if e.kind in (PkiEntryKind.ORGANISATION, PkiEntryKind.DEVICE))
    policies = organisation_ca.certificate.policies + device_ca.certificate.policies
    if len(policies) != 2:
        raise KeystoreError("each CA of a test PKI carries exactly one policy")
    return TestPki(
        root,
        organisation_ca,
        device_ca,
        issued,
        root.certificate.not_before,
        policies[0],
        policies[1],
    )


def _load_entry(directory: Path, row: Any) -> PkiEntry:
    if not isinstance(row, dict):
        raise KeystoreError(f"entry is not an object: {row!r}")
    try:
        name = str(row["name"])
        kind = PkiEntryKind(row["kind"])
        cell = row["cell_usage"]
        cell_usage = None if cell is None else CellUsage(cell)
        certificate = SmkiCertificate.from_pem(_read(directory, row["certificate"]))
        key_file = row["private_key"]
    except (KeyError, ValueError) as exc:
        if isinstance(exc, CertificateError):
            raise KeystoreError(f"entry {row.get('name')!r}: {exc}") from None
        raise KeystoreError(f"entry {row.get('name')!r}: bad field {exc}") from None
    key_der = None
    key = None
    if key_file is not None:
        try:
            loaded = serialization.load_pem_private_key(_read(directory, key_file), None)
        except (ValueError, TypeError) as exc:
            raise KeystoreError(f"entry {name!r}: unreadable private key: {exc}") from None
        if not isinstance(loaded, ec.EllipticCurvePrivateKey):
            raise KeystoreError(f"entry {name!r}: not an EC private key")
        key = loaded
        key_der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    entry = PkiEntry(name, kind, certificate, key_der, cell_usage, key)
    if row.get("serial") != certificate.serial_hex:
        raise KeystoreError(f"entry {name!r}: serial does not match its certificate")
    return entry


def _read(directory: Path, relative: Any) -> bytes:
    if not isinstance(relative, str) or relative.startswith("/") or ".." in Path(relative).parts:
        raise KeystoreError(f"file reference outside the PKI directory: {relative!r}")
    try:
        return (directory / relative).read_bytes()
    except OSError as exc:
        raise KeystoreError(f"cannot read {relative}: {exc}") from None
