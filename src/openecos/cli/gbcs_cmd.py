"""``openecos gbcs``: decode GBCS CS02a/CS02b frames and check their signature and MAC.

Keys come from ``--keystore`` sources (a test PKI directory, the ZAZ1 keystore
JSON, PEM certificate or key files; repeatable). The signature is checked with
every digital-signing certificate of the originator's EUI (a party may hold
more than one, e.g. ZAZ1's Z1 and Z1b transitionalCoS certificates); the MAC
with ECDH between an ACB key-agreement key and the other end's key-agreement
certificate, in whichever direction the keys at hand allow (docs/gbcs-cs02b.md
§3.2: both ends derive the same Z).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from openecos.cli import CliError, one_line_errors
from openecos.cli.render import plain, to_json
from openecos.gbcs import (
    GbcsFrame,
    MacInvalid,
    SignatureInvalid,
    decode_frame,
    decode_payload,
    verify_mac_with,
    verify_signature,
)
from openecos.gbcs.codes import KeyUsage, MessageCode, RemotePartyRole
from openecos.keys import KeyHandle, SoftwareKeyStore, open_keystore

app = typer.Typer(help="Decode and verify GBCS frames (CS02a, CS02b).")

MAX_HEX_INPUT = 1 << 20  # a CS02b command is a few KiB; refuse anything absurd


class Verdict(StrEnum):
    VALID = "valid"
    INVALID = "invalid"
    ABSENT = "absent"
    NO_KEY = "no-key"


@dataclass(frozen=True, slots=True)
class Check:
    verdict: Verdict
    detail: str


def read_hex(source: str) -> bytes:
    """Hex text from a file or ``-`` (standard input), whitespace ignored."""
    if source == "-":
        text = sys.stdin.read(MAX_HEX_INPUT + 1)
    else:
        path = Path(source)
        if path.stat().st_size > MAX_HEX_INPUT:
            raise CliError(f"{source}: larger than {MAX_HEX_INPUT} bytes of hex")
        text = path.read_text(encoding="ascii", errors="strict")
    if len(text) > MAX_HEX_INPUT:
        raise CliError("input larger than 1 MiB of hex")
    digits = "".join(text.split())
    if digits.lower().startswith("0x"):
        digits = digits[2:]
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise CliError(f"{source}: not hexadecimal text") from None


def check_signature(frame: GbcsFrame, store: SoftwareKeyStore) -> Check:
    if not frame.apdu.signature:
        return Check(Verdict.ABSENT, "unsigned (signature length 0)")
    candidates = store.find(eui=frame.apdu.originator, key_usage=KeyUsage.DIGITAL_SIGNATURE)
    if not candidates:
        return Check(Verdict.NO_KEY, f"no digital-signing certificate for {frame.apdu.originator}")
    for handle in candidates:
        try:
            verify_signature(frame, handle.public_key())
        except SignatureInvalid:
            continue
        return Check(Verdict.VALID, f"verified with {handle.name}")
    names = ", ".join(h.name for h in candidates)
    return Check(Verdict.INVALID, f"does not verify with {names}")


def _mac_pairs(frame: GbcsFrame, store: SoftwareKeyStore) -> list[tuple[KeyHandle, KeyHandle]]:
    """(private side, public side) pairs that could have produced this MAC."""
    acb = store.find(key_usage=KeyUsage.KEY_AGREEMENT, role=RemotePartyRole.ACCESS_CONTROL_BROKER)
    device = store.find(eui=frame.apdu.recipient, key_usage=KeyUsage.KEY_AGREEMENT)
    pairs = [(a, d) for a in acb if a.info.has_private_key for d in device]
    pairs += [(d, a) for d in device if d.info.has_private_key for a in acb]
    return pairs


def check_mac(frame: GbcsFrame, store: SoftwareKeyStore) -> Check:
    if frame.ciphering is None:
        return Check(Verdict.ABSENT, "no General-Ciphering MAC")
    pairs = _mac_pairs(frame, store)
    if not pairs:
        return Check(
            Verdict.NO_KEY,
            f"needs an ACB key-agreement key and {frame.apdu.recipient}'s key-agreement "
            "certificate, one of them with its private key",
        )
    for private, public in pairs:
        try:
            verify_mac_with(frame, private, public.public_key())
        except MacInvalid:
            continue
        return Check(Verdict.VALID, f"verified with {private.name} and {public.name}")
    return Check(Verdict.INVALID, "the GMAC tag does not verify with the keys given")


def describe(frame: GbcsFrame, store: SoftwareKeyStore) -> tuple[dict[str, object], bool]:
    """The JSON document for one frame, and whether every check present passed."""
    apdu = frame.apdu
    code = apdu.message_code
    code_name = MessageCode(code).name if code in MessageCode._value2member_map_ else None
    signature = check_signature(frame, store)
    mac = check_mac(frame, store)
    document: dict[str, object] = {
        "header": {
            "cra_flag": apdu.cra_flag.name,
            "originator_counter": apdu.originator_counter,
            "originator": apdu.originator.duis,
            "recipient": apdu.recipient.duis,
            "date_time": plain(apdu.date_time) if apdu.date_time else None,
            "message_code": f"0x{code:04X}",
            "message_code_name": code_name,
        },
        "content": plain(decode_payload(frame)),
        "signature": {"verdict": signature.verdict.value, "detail": signature.detail},
        "mac": {"verdict": mac.verdict.value, "detail": mac.detail},
    }
    ok = Verdict.INVALID not in (signature.verdict, mac.verdict)
    return document, ok


@app.command("decode")
@one_line_errors
def decode(
    source: Annotated[str, typer.Argument(help="A file of hex text, or - for standard input.")],
    keystore: Annotated[
        list[Path] | None,
        typer.Option(
            "--keystore",
            "-k",
            help="Where keys and certificates come from: a PKI directory, the ZAZ1 "
            "keystore JSON, PEM certificate or key files. Repeatable.",
        ),
    ] = None,
) -> None:
    """Decode a GBCS frame and print it as JSON with signature and MAC verdicts.

    Exit status: 0 decoded and nothing failed to verify; 1 a signature or MAC
    is present and does not verify with the keys given; 2 bad input.
    """
    store = open_keystore(keystore or [])
    frame = decode_frame(read_hex(source))
    document, ok = describe(frame, store)
    typer.echo(to_json(document))
    if not ok:
        raise typer.Exit(1)
