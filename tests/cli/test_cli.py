"""The command line: pki init, gbcs decode (verdicts, exit codes), demo, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from openecos.cli import app
from openecos.smki import load_test_pki
from tests.reference import RTDS_623, RTDS_TCOS, reference_path

runner = CliRunner()

COMMAND_623 = "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_COMMAND_GBCS.HEX"
RESPONSE_623 = "CS02bSupplierByTransCoS_6.23_IMMEDIATE_SUCCESS_RESPONSE_GBCS.HEX"
ALERT_623 = "CS02bSupplierByTransCoS_6.23_8F66_FUTURE_DATED_SUCCESS_ALERT_GBCS.HEX"
COMMAND_TCOS = "CS02bTransCoSByTransCoS_NA_SUCCESS_COMMAND_GBCS.HEX"


def rtds_keystores() -> list[str]:
    keystore = reference_path("keystore")
    args: list[str] = []
    for path in (
        keystore / "zaz1-keystore.json",
        keystore / "devices" / "00db1234567890a0-ds.pem",
        keystore / "devices" / "00db1234567890a0-ka.pem",
    ):
        args += ["--keystore", str(path)]
    return args


def decode(path: Path | str, *extra: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, ["gbcs", "decode", str(path), *extra], input=stdin)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    ("folder", "name", "signer", "mac"),
    [
        (RTDS_623, COMMAND_623, "Z1-transitionalCoS-ds", "valid"),
        (RTDS_623, RESPONSE_623, "00db1234567890a0-ds", "absent"),
        (RTDS_623, ALERT_623, "00db1234567890a0-ds", "absent"),
        (RTDS_TCOS, COMMAND_TCOS, "Z1-transitionalCoS-ds", "valid"),
    ],
)
def test_decode_reports_signature_and_mac_of_rtds_frames(
    folder: str, name: str, signer: str, mac: str
) -> None:
    code, out, _ = decode(reference_path("rtds", folder, name), *rtds_keystores())
    assert code == 0
    document = json.loads(out)
    assert document["signature"] == {"verdict": "valid", "detail": f"verified with {signer}"}
    assert document["mac"]["verdict"] == mac


def test_decode_prints_header_and_content_of_the_623_command() -> None:
    code, out, _ = decode(reference_path("rtds", RTDS_623, COMMAND_623), *rtds_keystores())
    assert code == 0
    document = json.loads(out)
    assert document["header"]["originator"] == "90-B3-D5-1F-30-00-00-04"
    assert document["header"]["originator_counter"] == 6001
    assert document["header"]["message_code"] == "0x0107"
    control = document["content"]["authorising_remote_party_control"]
    assert control["credentials_replacement_mode"] == "SUPPLIER_BY_TRANS_COS"
    assert len(document["content"]["replacements"]) == 3


def test_a_tampered_signature_exits_1_with_verdict_invalid(tmp_path: Path) -> None:
    text = reference_path("rtds", RTDS_623, RESPONSE_623).read_text().strip()
    raw = bytearray.fromhex(text)
    raw[-1] ^= 0x01  # last byte of s
    tampered = tmp_path / "tampered.hex"
    tampered.write_text(raw.hex())
    code, out, _ = decode(tampered, *rtds_keystores())
    assert code == 1
    assert json.loads(out)["signature"]["verdict"] == "invalid"


def test_without_keys_the_verdicts_say_no_key() -> None:
    code, out, _ = decode(reference_path("rtds", RTDS_623, COMMAND_623))
    assert code == 0
    document = json.loads(out)
    assert document["signature"]["verdict"] == "no-key"
    assert document["mac"]["verdict"] == "no-key"


@pytest.mark.parametrize(
    ("stdin", "reason"),
    [
        ("zz", "not hexadecimal"),
        ("DF0901", "truncated at offset 3"),
        ("", "offset 0"),
        ("00" * 64, "offset 0"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(stdin: str, reason: str) -> None:
    code, out, err = decode("-", stdin=stdin)
    assert code == 2
    assert out == ""
    assert err.startswith("error:") and reason in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_a_missing_file_is_one_line_and_exit_2() -> None:
    code, _, err = decode("/nonexistent/frame.hex")
    assert code == 2 and err.startswith("error:") and "No such file" in err


def test_a_junk_keystore_is_refused_in_one_line(tmp_path: Path) -> None:
    junk = tmp_path / "junk.json"
    junk.write_text("{not json")
    code, _, err = decode(reference_path("rtds", RTDS_623, COMMAND_623), "--keystore", str(junk))
    assert code == 2 and err.startswith("error:")


def test_pki_init_writes_a_pki_that_reloads(tmp_path: Path) -> None:
    target = tmp_path / "pki"
    result = runner.invoke(app, ["pki", "init", str(target), "--devices", "3"])
    assert result.exit_code == 0, result.stderr
    pki = load_test_pki(target)
    devices = [e for e in pki.all_entries if e.kind.value == "device"]
    assert len(devices) == 6  # DS and KA for each of 3 meters
    assert (target / "pki.json").is_file()


def test_pki_init_refuses_a_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("x")
    result = runner.invoke(app, ["pki", "init", str(tmp_path)])
    assert result.exit_code == 2 and "not empty" in result.stderr


def test_demo_switches_the_valid_requests_and_refuses_the_rest(tmp_path: Path) -> None:
    xsd = reference_path("duis", "xsd")
    arguments = ["demo", "--dir", str(tmp_path / "demo"), "--xsd", str(xsd)]
    result = runner.invoke(app, [*arguments, "--meters", "40", "--switches", "8", "--invalid", "1"])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "every valid switch completed" in result.stdout
    assert "NO" not in result.stdout
    for kind in ("valid", "not-registered", "foreign-certificates", "unknown-device", "tampered"):
        assert kind in result.stdout


@pytest.mark.parametrize(
    ("kind", "ack", "code", "good"),
    [
        ("valid", "I99", "I0", True),
        ("valid", "I99", "E4", False),
        ("valid", "E42", "", False),
        ("replayed", "I99", "I0", False),
        ("replayed", "E42", "", True),
        ("tampered", "I99", "E4", False),
        ("tampered", "E41", "", True),
        ("not-registered", "I99", "E4", True),
        ("not-registered", "I99", "I0", False),
        ("unknown-device", "I99", "", False),
    ],
)
def test_the_demo_judges_each_answer_by_the_kind_of_request(
    kind: str, ack: str, code: str, good: bool
) -> None:
    from openecos.cli.demo import as_it_should_be
    from openecos.sandbox.burst import BurstKind

    assert as_it_should_be(BurstKind(kind), ack, code) is good


def test_serve_maps_tad_flags_onto_whole_buckets() -> None:
    from datetime import timedelta

    from openecos.cli.serve_cmd import _tad_config
    from openecos.service import WorkerSettings

    default = WorkerSettings().tad
    unchanged = _tad_config(default, None, None, default.window.total_seconds() / 3600)
    assert unchanged == default
    set_ = _tad_config(default, 5, 50, 1.1)  # 1.1 h is 4.4 buckets of 15 min: rounds to 4
    assert (set_.default_user_threshold, set_.dcc_threshold) == (5, 50)
    assert set_.window == timedelta(hours=1)
