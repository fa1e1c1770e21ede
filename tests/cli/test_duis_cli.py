"""openecos duis new-cos / sign / verify / send, against DCC Boxed's samples and a sandbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from typer.testing import CliRunner

from openecos.cli import app
from openecos.duis import (
    DuisSchema,
    RequestId,
    ResponseCode,
    SigningIdentity,
    build_acknowledgement,
    parse_document,
    read_update_security_credentials_cos,
    receive_update_security_credentials_cos,
)
from openecos.eui import Eui64
from openecos.sandbox import Sandbox, create_sandbox
from openecos.store import DeviceType, NotFound
from tests.reference import reference_path

runner = CliRunner()

TEMPLATES = (
    "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML",
    "CS02bSupplierByTransCoS_6.23_FUTURE_DATED_SUCCESS_REQUEST_DUIS.XML",
    "CS02bSupplierByTransCoS_6.23_CANCELLATION_SUCCESS_REQUEST_DUIS.XML",
)
# DCC Boxed samples signed by the JDK tool, and the certificate beside the keystore
# (or in it) that signed each (docs/duis-xmldsig-smki.md §3.2).
SIGNED_SAMPLES = {
    "message.xml": "zaz1-keystore.json",  # Z1-accessControlBroker-ds
    "readfw-response.xml": "dsp-xml-sign-90B3D51F30000002-ds-pre-1.4.1.pem",
    "read-inventory-response-5.4.xml": "Z1-accessControlBroker-dSPXmlSign.pem",
}
NOW = "2026-01-05T00:00:00Z"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return create_sandbox(tmp_path_factory.mktemp("duis") / "sbx", meters=40, seed=3)


def _meter(sandbox: Sandbox, device_type: DeviceType, mpid_prefix: str) -> Eui64:
    with sandbox.open_store() as store:
        for device in store.devices.find(device_type=device_type):
            assert device.mpxn is not None
            found = store.registrations.registered_supplier(
                device.mpxn, datetime(2026, 1, 1, tzinfo=UTC)
            )
            if found is not None and found.registration.supplier_mpid.startswith(mpid_prefix):
                return device.eui
    raise AssertionError("no such meter")


# -- DCC Boxed interop ------------------------------------------------------------------------


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates_resigned_with_sandbox_keys_verify(
    template: str, sandbox: Sandbox, tmp_path: Path
) -> None:
    signed = tmp_path / "signed.xml"
    pki = str(sandbox.directory / "pki")
    source = reference_path("duis", "templates", template)
    code, _, err = run(
        "duis", "sign", str(source), "-k", pki, "--key", "supplier-a-xml-sign", "-o", str(signed)
    )
    assert code == 0, err
    data = signed.read_bytes()
    assert b"\n" not in data and data.count(b"</ds:Signature>") == 1  # minified, one signature
    code, out, _ = run(
        "duis",
        "verify",
        str(signed),
        "-k",
        pki,
        "--no-binding",
        "--schema",
        str(reference_path("duis", "xsd")),
    )
    assert code == 0, out
    assert "signature: valid (supplier-a-xml-sign" in out
    # The template's originator is ZAZ1's supplier, not supplier A: the binding says so.
    code, out, _ = run("duis", "verify", str(signed), "-k", pki, "--at", NOW)
    assert code == 1
    assert "binding: refused" in out and "90-B3-D5-1F-30-01-00-00" in out


def test_sign_can_set_the_request_counter(sandbox: Sandbox, tmp_path: Path) -> None:
    signed = tmp_path / "signed.xml"
    source = reference_path("duis", "templates", TEMPLATES[0])
    code, _, _ = run(
        "duis",
        "sign",
        str(source),
        "-k",
        str(sandbox.directory / "pki"),
        "--key",
        "supplier-b-xml-sign",
        "--counter",
        "1234567",
        "-o",
        str(signed),
    )
    assert code == 0
    request = read_update_security_credentials_cos(parse_document(signed.read_bytes()))
    assert request.header.request_id.counter == 1234567


@pytest.mark.parametrize(("sample", "certificate"), sorted(SIGNED_SAMPLES.items()))
def test_jdk_signed_samples_verify_with_their_certificates(sample: str, certificate: str) -> None:
    code, out, _ = run(
        "duis",
        "verify",
        str(reference_path("duis", "samples", sample)),
        "-k",
        str(reference_path("keystore", certificate)),
        "--no-binding",
    )
    assert code == 0, out
    assert "issuer CN=Z1,OU=07" in out


def test_tampered_sample_fails_with_exit_one() -> None:
    code, out, _ = run(
        "duis",
        "verify",
        str(reference_path("duis", "samples", "readfw-response-badsignature.xml")),
        "-k",
        str(reference_path("keystore", SIGNED_SAMPLES["readfw-response.xml"])),
        "--no-binding",
    )
    assert code == 1
    assert "signature: invalid" in out and "does not verify" in out


def test_signature_by_an_unknown_certificate_fails_with_exit_one(sandbox: Sandbox) -> None:
    code, out, _ = run(
        "duis",
        "verify",
        str(reference_path("duis", "samples", "readfw-response.xml")),
        "-k",
        str(sandbox.directory / "pki"),
        "--no-binding",
    )
    assert code == 1 and "no certificate known" in out


def test_xxe_sample_is_refused_as_bad_input() -> None:
    code, out, err = run(
        "duis",
        "verify",
        str(reference_path("duis", "samples", "duis-xxe.xml")),
        "-k",
        str(reference_path("keystore", "zaz1-keystore.json")),
    )
    assert code == 2 and out == ""
    assert "DOCTYPE" in err and err.count("\n") == 1


# -- new-cos on a sandbox ---------------------------------------------------------------------


def _resolver(sandbox: Sandbox):  # type: ignore[no-untyped-def]
    store = sandbox.open_store()

    def resolve(issuer: str, serial: int) -> bytes | None:
        try:
            return store.certificates.by_issuer_serial(issuer, serial).der
        except NotFound:
            return None

    return resolve


def test_new_cos_output_verifies_and_is_received(sandbox: Sandbox, tmp_path: Path) -> None:
    device = _meter(sandbox, DeviceType.GSME, "OEA")
    request = tmp_path / "cos.xml"
    code, _, err = run(
        "duis",
        "new-cos",
        "--sandbox",
        str(sandbox.directory),
        "--device",
        device.duis,
        "--supplier",
        "supplier-b",
        "--counter",
        "42",
        "-o",
        str(request),
    )
    assert code == 0, err
    code, out, _ = run(
        "duis", "verify", str(request), "-k", str(sandbox.directory / "pki"), "--at", NOW
    )
    assert code == 0, out
    assert "binding: valid (bound to 90-B3-D5-1F-40-02-00-00, role 0x87" in out
    received = receive_update_security_credentials_cos(
        request.read_bytes(),
        schema=DuisSchema.load(reference_path("duis", "xsd")),
        resolve_certificate=_resolver(sandbox),
    )
    assert received.request.header.request_id == RequestId(
        Eui64.parse("90B3D51F40020000"), device, 42
    )


def test_new_cos_future_dated_and_unsigned(sandbox: Sandbox) -> None:
    device = _meter(sandbox, DeviceType.ESME, "OEB")
    code, out, _ = run(
        "duis",
        "new-cos",
        "--sandbox",
        str(sandbox.directory),
        "--device",
        device.hex,
        "--supplier",
        "OEAE",
        "--future",
        "2030-01-02",
        "--no-sign",
        "--counter",
        "7",
    )
    assert code == 0
    request = read_update_security_credentials_cos(parse_document(out.encode()))
    assert request.body.execution_date_time == datetime(2030, 1, 2, tzinfo=UTC)
    assert b"Signature" not in out.encode()


def test_new_cos_register_records_the_gaining_supplier(tmp_path: Path) -> None:
    sandbox = create_sandbox(tmp_path / "sbx", meters=6, seed=5)
    device = _meter(sandbox, DeviceType.ESME, "OEA")
    code, _, err = run(
        "duis",
        "new-cos",
        "--sandbox",
        str(sandbox.directory),
        "--device",
        device.hex,
        "--supplier",
        "SUPPLIER-B",
        "--future",
        "2030-01-02T00:00:00Z",
        "--register",
        "-o",
        str(tmp_path / "r.xml"),
    )
    assert code == 0, err
    with sandbox.open_store() as store:
        mpxn = store.devices.get(device).mpxn
        assert mpxn is not None
        before = store.registrations.registered_supplier(mpxn, datetime(2029, 1, 1, tzinfo=UTC))
        after = store.registrations.registered_supplier(mpxn, datetime(2030, 1, 2, tzinfo=UTC))
    assert before is not None and before.registration.supplier_mpid == "OEAE"
    assert after is not None and after.registration.supplier_mpid == "OEBE"


def test_new_cos_refuses_future_with_cancel_and_unknown_devices(sandbox: Sandbox) -> None:
    base = ("duis", "new-cos", "--sandbox", str(sandbox.directory), "--supplier", "SUPPLIER-B")
    code, _, err = run(*base, "--device", "00DB120000000001", "--future", "2030-01-01", "--cancel")
    assert code == 2 and "exclude" in err
    code, _, err = run(*base, "--device", "00DB12FFFFFFFFFF")
    assert code == 2 and "no device" in err


# -- send -------------------------------------------------------------------------------------


class _Service(BaseHTTPRequestHandler):
    """Answers POST /duis with a signed acknowledgement carrying ``code``."""

    code = ResponseCode.I99
    signer: SigningIdentity
    received: ClassVar[list[bytes]] = []

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(self.rfile.read(length))
        body = build_acknowledgement(
            request_id=None,
            response_code=self.code,
            at=datetime(2026, 1, 1, tzinfo=UTC),
            signer=self.signer,
        )
        self.send_response(200 if self.path == "/duis" else 404)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service(sandbox: Sandbox) -> Iterator[tuple[str, type[_Service]]]:
    handle = sandbox.keystore.key("dcc-xml-sign")
    assert handle.certificate_der is not None
    handler = type(
        "Handler",
        (_Service,),
        {
            "signer": SigningIdentity.for_certificate(handle, handle.certificate_der),
            "received": [],
        },
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("code", "exit_code"), [(ResponseCode.I99, 0), (ResponseCode.E41, 1)])
def test_send_prints_the_acknowledgement_code(
    service: tuple[str, type[_Service]], tmp_path: Path, code: ResponseCode, exit_code: int
) -> None:
    url, handler = service
    handler.code = code
    request = tmp_path / "r.xml"
    request.write_bytes(reference_path("duis", "templates", TEMPLATES[0]).read_bytes())
    status, out, _ = run("duis", "send", str(request), "--url", url)
    assert status == exit_code
    assert out.startswith(code.value)
    assert handler.received == [request.read_bytes()]


def test_send_to_nothing_listening_is_one_line(tmp_path: Path) -> None:
    request = tmp_path / "r.xml"
    request.write_bytes(b"<x/>")
    with ThreadingHTTPServer(("127.0.0.1", 0), _Service) as server:
        port = server.server_address[1]  # bound, then closed: nobody answers there
    code, _, err = run(
        "duis", "send", str(request), "--url", f"http://127.0.0.1:{port}", "--timeout", "2"
    )
    assert code == 2 and err.count("\n") == 1
