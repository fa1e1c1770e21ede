"""``openecos duis``: make, sign, verify and send DUIS XML (Service Request 6.23).

``new-cos`` writes a 6.23 for a sandbox meter and a gaining supplier, signed
with that supplier's XML-signing key. ``sign`` re-signs any DUIS document as
DCC Boxed's signing tool does (minified, the old signature dropped).
``verify`` checks a signature with the certificates given by ``--keystore``
(found by KeyInfo's X509IssuerSerial) and, unless ``--no-binding``, that the
signer may sign it (docs/duis-xmldsig-smki.md §6 step 6): for a request the
certificate's EUI is the RequestID originator and its role 0x87; for
anything the DCC sends, role 0x89. Every CA certificate given is a trust
anchor. ``send`` posts a request to a running service's ``/duis``.

Exit status: 0 success; 1 a signature or binding that does not verify, or an
error response code; 2 bad input (one line on standard error).
"""

from __future__ import annotations

import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from openecos.cli import CliError, err, one_line_errors
from openecos.duis import (
    CANCELLATION_SENTINEL,
    DCC_XML_SIGNING_ROLES,
    DEFAULT_MAX_SIZE,
    USER_XML_SIGNING_ROLES,
    DuisSchema,
    RequestId,
    SignatureError,
    SignerNotBound,
    SigningIdentity,
    VerifiedSignature,
    build_update_security_credentials_cos,
    check_signer_binding,
    issuer_of,
    parse_document,
    sign_document,
    verify_signature,
)
from openecos.duis.document import NS_SR
from openecos.eui import Eui64
from openecos.keys import SoftwareKeyStore, open_keystore
from openecos.sandbox import load_sandbox
from openecos.sandbox.requests import new_cos_request, signing_identity
from openecos.smki import CertificateError, SmkiCertificate
from openecos.store.csv_reading import parse_instant

app = typer.Typer(help="Make, sign, verify and send DUIS XML (Service Request 6.23).")

_SR = f"{{{NS_SR}}}"
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'
KeystoreOption = Annotated[
    list[Path],
    typer.Option(
        "--keystore",
        "-k",
        help="Keys and certificates: a PKI directory, the ZAZ1 keystore JSON, PEM files. "
        "Repeatable.",
    ),
]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
]


def read_document(source: Path) -> bytes:
    if source.stat().st_size > DEFAULT_MAX_SIZE:
        raise CliError(f"{source}: larger than the {DEFAULT_MAX_SIZE}-byte DUIS cap")
    return source.read_bytes()


def emit(data: bytes, output: Path | None) -> None:
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        output.write_bytes(data)
        err.print(f"wrote {output}")


def _set_counter(root: etree._Element, counter: int) -> None:
    element = root.find(f"{_SR}Header/{_SR}RequestID")
    if element is None:
        raise CliError("--counter needs an sr:Request with a RequestID")
    current = RequestId.parse(element.text or "")
    element.text = RequestId(current.originator, current.target, counter).duis


@app.command("new-cos")
@one_line_errors
def new_cos(
    sandbox_dir: Annotated[Path, typer.Option("--sandbox", help="The sandbox directory.")],
    device: Annotated[str, typer.Option(help="The meter's EUI (any spelling).")],
    supplier: Annotated[str, typer.Option(help="The gaining supplier: party ID, user ID or MPID.")],
    future: Annotated[
        str | None,
        typer.Option(help="Execute at this date (UK midnight) or ISO date-time with offset."),
    ] = None,
    cancel: Annotated[
        bool, typer.Option("--cancel", help="Cancel the pending future-dated 6.23.")
    ] = False,
    counter: Annotated[
        int | None,
        typer.Option(min=0, max=(1 << 64) - 1, help="RequestID counter (default: now in ms)."),
    ] = None,
    sign: Annotated[bool, typer.Option("--sign/--no-sign", help="Sign the request.")] = True,
    register: Annotated[
        bool,
        typer.Option(
            help="Also record the gaining supplier as registered for the MPxN from the "
            "execution time (or now) in the sandbox's store."
        ),
    ] = False,
    output: OutputOption = None,
) -> None:
    """Write a 6.23 (UpdateSecurityCredentialsCoS) for a sandbox meter and a gaining supplier."""
    if future is not None and cancel:
        raise CliError("--future and --cancel exclude each other")
    execution = CANCELLATION_SENTINEL if cancel else None
    if future is not None:
        execution = parse_instant(future)
    sandbox = load_sandbox(sandbox_dir, meters=False)
    built = new_cos_request(
        sandbox,
        Eui64.parse(device),
        supplier,
        counter=int(time.time() * 1000) if counter is None else counter,
        execution=execution,
    )
    root = build_update_security_credentials_cos(built.request)
    if sign:
        data = sign_document(root, signing_identity(sandbox, built.user))
    else:
        data = _XML_DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    if register and not cancel:
        when = execution or datetime.now(UTC)
        with sandbox.open_store() as store:
            store.registrations.change_supplier(built.device.mpxn or "", built.mpid, when)
        err.print(f"registered {built.mpid} for {built.device.mpxn} from {when.isoformat()}")
    emit(data, output)


@app.command("sign")
@one_line_errors
def sign(
    source: Annotated[Path, typer.Argument(help="The DUIS XML to sign (any old signature goes).")],
    keystore: KeystoreOption,
    key: Annotated[str, typer.Option(help="The signing key's entry name in the key store.")],
    counter: Annotated[
        int | None,
        typer.Option(min=0, max=(1 << 64) - 1, help="Set the RequestID counter first."),
    ] = None,
    output: OutputOption = None,
) -> None:
    """Sign a DUIS document as DCC Boxed's tool does: minified, enveloped, ECDSA P-256."""
    store = open_keystore(keystore)
    handle = store.key(key)
    certificate = handle.certificate_der
    if certificate is None:
        raise CliError(f"{key}: no certificate; KeyInfo needs its issuer and serial")
    root = parse_document(read_document(source), minify=True)
    if counter is not None:
        _set_counter(root, counter)
    emit(sign_document(root, SigningIdentity.for_certificate(handle, certificate)), output)


def _certificates(store: SoftwareKeyStore) -> dict[tuple[str, int], bytes]:
    known: dict[tuple[str, int], bytes] = {}
    for info in store.entries():
        der = info.certificate_der
        if der is None:
            continue
        try:
            serial = x509.load_der_x509_certificate(der).serial_number
            known[(issuer_of(der), serial)] = der
        except ValueError:
            continue  # e.g. ZAZ1's mdr-* certificates (NULL ECDSA parameters, docs §3.2)
    return known


def _anchors(store: SoftwareKeyStore) -> list[SmkiCertificate]:
    anchors = []
    for info in store.entries():
        if info.certificate_authority and info.certificate_der is not None:
            try:
                anchors.append(SmkiCertificate.from_der(info.certificate_der))
            except CertificateError:
                continue
    return anchors


def _binding(
    root: etree._Element,
    verified: VerifiedSignature,
    store: SoftwareKeyStore,
    at: datetime,
    originator: str | None,
) -> str:
    if verified.certificate_der is None:
        raise SignerNotBound("no certificate to bind")
    leaf = SmkiCertificate.from_der(verified.certificate_der)
    if root.tag == f"{_SR}Request":
        element = root.find(f"{_SR}Header/{_SR}RequestID")
        sender = RequestId.parse("" if element is None else element.text or "").originator
        roles = USER_XML_SIGNING_ROLES
    else:
        # What the DCC sends: the signer is the DCC, named by --originator or its certificate.
        fallback = leaf.entity_eui or Eui64(bytes(8))
        sender = Eui64.parse(originator) if originator else fallback
        roles = DCC_XML_SIGNING_ROLES
    anchors = _anchors(store)
    if not anchors:
        raise SignerNotBound("no CA certificate in the key stores given to chain to")
    policies = {p for a in anchors for p in a.policies}
    check_signer_binding(
        verified.certificate_der, sender, at=at, anchors=anchors, policies=policies, roles=roles
    )
    role = "none" if leaf.role is None else f"0x{leaf.role.value:02X}"
    return f"bound to {sender.duis}, role {role}, at {at.isoformat()}"


@app.command("verify")
@one_line_errors
def verify(
    source: Annotated[Path, typer.Argument(help="The signed DUIS XML.")],
    keystore: KeystoreOption,
    binding: Annotated[
        bool,
        typer.Option(
            "--binding/--no-binding",
            help="Check the signer may sign this message (EUI, role, validity, chain).",
        ),
    ] = True,
    at: Annotated[
        str | None, typer.Option(help="Binding time, ISO 8601 with offset (default: now).")
    ] = None,
    originator: Annotated[
        str | None, typer.Option(help="The DCC's EUI, for messages the DCC signs.")
    ] = None,
    schema: Annotated[
        Path | None, typer.Option(help="Validate against the DUIS XSDs in this directory first.")
    ] = None,
) -> None:
    """Verify a DUIS signature with the certificates given; exit 0 only when it verifies."""
    store = open_keystore(keystore)
    root = parse_document(read_document(source))
    if schema is not None:
        DuisSchema.load(schema).validate(root)
        typer.echo("schema: valid (DUIS V5.4)")
    known = _certificates(store)
    names = {info.certificate_der: info.name for info in store.entries() if info.certificate_der}
    try:
        verified = verify_signature(root, lambda issuer, serial: known.get((issuer, serial)))
    except SignatureError as exc:
        typer.echo(f"signature: invalid: {exc}")
        raise typer.Exit(1) from None
    typer.echo(
        f"signature: valid ({names.get(verified.certificate_der or b'', '?')}, "
        f"issuer {verified.issuer}, serial {verified.serial})"
    )
    if not binding:
        typer.echo("binding: not checked (--no-binding)")
        return
    when = parse_instant(at) if at is not None else datetime.now(UTC)
    try:
        detail = _binding(root, verified, store, when, originator)
    except SignerNotBound as exc:
        typer.echo(f"binding: refused: {exc}")
        raise typer.Exit(1) from None
    typer.echo(f"binding: valid ({detail})")


@app.command("send")
@one_line_errors
def send(
    source: Annotated[Path, typer.Argument(help="The signed DUIS request.")],
    url: Annotated[
        str, typer.Option(help="The service, e.g. http://127.0.0.1:8000 (posts to /duis).")
    ],
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds to wait.")] = 30.0,
) -> None:
    """POST a request to a service's /duis and print the acknowledgement's response code."""
    data = read_document(source)
    if not url.startswith(("http://", "https://")):
        raise CliError(f"not an http(s) URL: {url}")
    target = url.rstrip("/") + "/duis"
    request = urllib.request.Request(
        target, data=data, method="POST", headers={"Content-Type": "application/xml"}
    )
    try:
        with urllib.request.urlopen(
            request, timeout=timeout
        ) as answer:  # http(s) only, checked above
            status, body = answer.status, answer.read(DEFAULT_MAX_SIZE + 1)
    except urllib.error.HTTPError as exc:  # 4xx/5xx may still carry an acknowledgement
        status, body = exc.code, exc.read(DEFAULT_MAX_SIZE + 1)
    except (urllib.error.URLError, TimeoutError) as exc:
        raise CliError(f"{target}: {getattr(exc, 'reason', exc)}") from None
    code_element = parse_document(body).find(f"{_SR}Header/{_SR}ResponseCode")
    if code_element is None or not (code_element.text or "").strip():
        raise CliError(f"{target}: HTTP {status}, no DUIS ResponseCode in the answer")
    code = code_element.text.strip()
    typer.echo(f"{code} (HTTP {status})")
    if code.startswith("E"):
        raise typer.Exit(1)
