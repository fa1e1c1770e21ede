"""Where software keys come from: files, directories and keystore JSON.

Three published or project formats, each read straight from its file:

- a PEM (or DER) file holding a private key, a certificate, or both; a key
  file and a certificate file that share a name (``x.key.pem``, ``x.pem``)
  join into one entry;
- a test PKI directory written by :mod:`openecos.smki` (index ``pki.json``,
  format ``openecos-test-pki/1``, paths relative to the directory);
- the ZAZ1 keystore JSON (docs/duis-xmldsig-smki.md §3.2):
  ``{eui: {"digitalSignature"|"keyAgreement": {serial: {certificate,
  privateKey, role, name}}}}``.

:func:`open_keystore` takes any mix of these and backs the CLI's repeatable
``--keystore`` option. Every failure names the file and the reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from asn1crypto import pem

from openecos.eui import Eui64, InvalidEui
from openecos.gbcs.codes import CellUsage, KeyUsage, RemotePartyRole
from openecos.keys.certificates import certificate_der, read_certificate
from openecos.keys.errors import InvalidKeyMaterial
from openecos.keys.model import KeyHandle, KeyInfo
from openecos.keys.software import SoftwareKeyStore, load_private_key

PKI_INDEX = "pki.json"
PKI_FORMAT = "openecos-test-pki/1"
_PKI_KINDS = frozenset({"root", "ca", "organisation", "device"})
_KEY_CERT_SIGN = "keyCertSign"
_SUFFIXES = (".pem", ".der", ".crt", ".cer", ".key", ".cert")
_EUI_KEY = re.compile(r"^[0-9A-Fa-f]{16}$")


def open_keystore(paths: Sequence[Path]) -> SoftwareKeyStore:
    """One store from any mix of PKI directories, ZAZ1 JSON, PEM key and certificate files."""
    store = SoftwareKeyStore()
    for path in paths:
        add_source(store, Path(path))
    return store


def add_source(store: SoftwareKeyStore, path: Path) -> tuple[KeyHandle, ...]:
    """Adds whatever ``path`` holds, recognised by shape rather than by name."""
    if not path.exists():
        raise InvalidKeyMaterial(str(path), "no such file or directory")
    if path.is_dir():
        if not (path / PKI_INDEX).is_file():
            raise InvalidKeyMaterial(
                str(path), f"a keystore directory must hold a test PKI index ({PKI_INDEX})"
            )
        return load_pki_directory(store, path)
    data = _read(path)
    if data.lstrip().startswith(b"{"):
        document = _json(data, str(path))
        if isinstance(document, dict) and document.get("format") == PKI_FORMAT:
            return load_pki_directory(store, path.parent, document)
        if _looks_like_zaz1(document):
            return load_zaz1_keystore(store, path, document)
        raise InvalidKeyMaterial(
            str(path), "JSON that is neither a test PKI index nor a ZAZ1 keystore"
        )
    return load_key_file(store, path, data)


def load_key_file(
    store: SoftwareKeyStore, path: Path, data: bytes | None = None, name: str | None = None
) -> tuple[KeyHandle, ...]:
    """A PEM file (keys and/or certificates) or one DER key or certificate."""
    source = str(path)
    data = _read(path) if data is None else data
    name = name or entry_name(path)
    keys: list[bytes] = []
    certificates: list[bytes] = []
    if pem.detect(data):
        try:
            blocks = list(pem.unarmor(data, multiple=True))
        except ValueError as exc:
            raise InvalidKeyMaterial(source, f"malformed PEM: {exc}") from None
        for kind, _, der in blocks:
            if kind in ("PRIVATE KEY", "EC PRIVATE KEY"):
                keys.append(bytes(der))
            elif kind == "CERTIFICATE":
                certificates.append(bytes(der))
            elif kind == "ENCRYPTED PRIVATE KEY":
                raise InvalidKeyMaterial(source, "encrypted private keys are not supported")
            elif kind != "EC PARAMETERS":  # written by `openssl ecparam -genkey`
                raise InvalidKeyMaterial(source, f"unexpected PEM block {kind!r}")
    else:
        try:
            load_private_key(data, source)
            keys.append(data)
        except InvalidKeyMaterial:
            try:
                read_certificate(data, source)
            except InvalidKeyMaterial:
                raise InvalidKeyMaterial(
                    source, "neither PEM nor a DER private key or certificate"
                ) from None
            certificates.append(data)
    if len(keys) > 1:
        raise InvalidKeyMaterial(source, f"holds {len(keys)} private keys; give one per file")
    if keys:
        if len(certificates) > 1:
            raise InvalidKeyMaterial(source, "a key file may carry at most its own certificate")
        certificate = certificates[0] if certificates else None
        key = load_private_key(keys[0], source)
        return (store.add(KeyInfo(name), key, certificate),)
    if not certificates:
        raise InvalidKeyMaterial(source, "no private key or certificate found")
    return tuple(
        store.add(KeyInfo(name if i == 0 else f"{name}-{i + 1}"), None, der)
        for i, der in enumerate(certificates)
    )


def entry_name(path: Path) -> str:
    """The entry name of a key file: its name without key/certificate suffixes."""
    name = path.name
    while True:
        lowered = name.lower()
        suffix = next((s for s in _SUFFIXES if lowered.endswith(s) and len(s) < len(name)), None)
        if suffix is None:
            return name
        name = name[: -len(suffix)]


def load_pki_directory(
    store: SoftwareKeyStore, directory: Path, index: Any = None
) -> tuple[KeyHandle, ...]:
    """Every entry of an ``openecos-test-pki/1`` directory."""
    source = str(directory / PKI_INDEX)
    if index is None:
        index = _json(_read(directory / PKI_INDEX), source)
    if not isinstance(index, dict) or index.get("format") != PKI_FORMAT:
        raise InvalidKeyMaterial(source, f"not a test PKI index (format {PKI_FORMAT!r})")
    entries = index.get("entries")
    if not isinstance(entries, list):
        raise InvalidKeyMaterial(source, "'entries' must be a list")
    root = directory.resolve()
    return tuple(_pki_entry(store, root, source, entry) for entry in entries)


def _pki_entry(store: SoftwareKeyStore, root: Path, source: str, entry: Any) -> KeyHandle:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise InvalidKeyMaterial(source, f"an entry without a name: {entry!r:.80}")
    name: str = entry["name"]
    where = f"{source} [{name}]"
    try:
        if entry.get("kind") not in _PKI_KINDS:
            raise ValueError(f"unknown kind {entry.get('kind')!r}")
        usage = entry.get("key_usage")
        is_ca = usage == _KEY_CERT_SIGN
        info = KeyInfo(
            name,
            key_usage=None if is_ca else KeyUsage(str(usage)),
            eui=None if entry.get("eui") is None else Eui64.parse(str(entry["eui"])),
            role=None if entry.get("role") is None else RemotePartyRole(entry["role"]),
            cell_usage=None if entry.get("cell_usage") is None else CellUsage(entry["cell_usage"]),
            serial=int(str(entry["serial"]), 16),
            certificate_authority=is_ca,
        )
        certificate_path = _inside(root, entry["certificate"])
        key_path = None if entry.get("private_key") is None else _inside(root, entry["private_key"])
    except (KeyError, ValueError, TypeError, InvalidEui) as exc:
        raise InvalidKeyMaterial(where, f"malformed PKI index entry: {exc}") from None
    certificate = read_certificate_file(certificate_path)
    key = None if key_path is None else load_private_key(_read(key_path), str(key_path))
    handle = store.add(info, key, certificate)
    # The index and the certificate must tell the same story.
    if handle.info.serial != info.serial or (info.eui is not None and handle.info.eui != info.eui):
        raise InvalidKeyMaterial(where, "the index disagrees with the certificate")
    return handle


def load_zaz1_keystore(
    store: SoftwareKeyStore, path: Path, document: Any = None
) -> tuple[KeyHandle, ...]:
    """Every entry of a ZAZ1 ``keystore.json`` (docs/duis-xmldsig-smki.md §3.2)."""
    source = str(path)
    if document is None:
        document = _json(_read(path), source)
    if not _looks_like_zaz1(document):
        raise InvalidKeyMaterial(source, "not a ZAZ1 keystore ({eui: {usage: {serial: entry}}})")
    handles: list[KeyHandle] = []
    for eui_text, by_usage in document.items():
        for usage_text, by_serial in by_usage.items():
            for serial_text, entry in by_serial.items():
                handles.append(_zaz1_entry(store, source, eui_text, usage_text, serial_text, entry))
    return tuple(handles)


def _zaz1_entry(
    store: SoftwareKeyStore,
    source: str,
    eui_text: str,
    usage_text: str,
    serial_text: str,
    entry: Any,
) -> KeyHandle:
    where = f"{source} [{eui_text}/{usage_text}/{serial_text}]"
    try:
        name = str(entry["name"])
        role_number = int(entry["role"])
        info = KeyInfo(
            name,
            key_usage=KeyUsage(usage_text),
            eui=Eui64.parse(eui_text),
            # 0x87/0x89 xml-sign roles are members; anything else is filed without a role.
            role=RemotePartyRole(role_number)
            if role_number in RemotePartyRole._value2member_map_
            else None,
            serial=int(serial_text),
        )
        certificate = str(entry["certificate"]).encode()
        private = entry.get("privateKey")
    except (KeyError, ValueError, TypeError, InvalidEui) as exc:
        raise InvalidKeyMaterial(where, f"malformed ZAZ1 entry: {exc}") from None
    key = None if private is None else load_private_key(str(private).encode(), where)
    return store.add(info, key, certificate_der(certificate, where))


def read_certificate_file(path: Path) -> bytes:
    """The DER of the certificate in a PEM or DER file."""
    return certificate_der(_read(path), str(path))


def _looks_like_zaz1(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and bool(document)
        and all(
            isinstance(eui, str)
            and _EUI_KEY.match(eui)
            and isinstance(by_usage, dict)
            and all(isinstance(v, dict) for v in by_usage.values())
            for eui, by_usage in document.items()
        )
    )


def _inside(root: Path, relative: Any) -> Path:
    if not isinstance(relative, str):
        raise TypeError(f"a path must be a string, got {relative!r}")
    path = (root / relative).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"path {relative!r} leaves the PKI directory")
    return path


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidKeyMaterial(str(path), f"cannot read: {exc.strerror or exc}") from None


def _json(data: bytes, source: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeError) as exc:
        raise InvalidKeyMaterial(source, f"malformed JSON: {exc}") from None
