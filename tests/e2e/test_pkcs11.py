"""The service with the CoS Parties' keys in a PKCS#11 token (SoftHSM2), over HTTP.

The TCoS and ECoS transitionalCoS signing keys and the ACB key-agreement key
are put into a throwaway SoftHSM2 token (tests/keys/conftest.py); the DCC's
XML-signing key stays in software (``ServiceConfig(pkcs11=..., key_sources=...)``).
A switch through each party completes, and the commands the meters executed
verify with the token's keys; the software store cannot sign them at all.
A key present in both places is refused at start-up.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from openecos.cos import CosParty
from openecos.gbcs import decode_frame, verify_signature
from openecos.gbcs.codes import KeyUsage
from openecos.keys import AmbiguousKey, Pkcs11Config, Pkcs11Key, Pkcs11KeyStore
from openecos.service import ManualClock, open_runtime
from openecos.smki.sandbox import ECOS_PARTY, SUPPLIER_B, TCOS_PARTY
from tests.e2e.world import NOW, build_request, next_counter
from tests.keys.conftest import SoftHsmToken, softhsm_token  # noqa: F401  (fixture)
from tests.service.env import (
    ECOS_METER,
    TCOS_METER,
    Environment,
    pki,
    post,
    request_id,
    running_server,
    runtime_for,
    status_of,
    wait_until,
)

pytestmark = pytest.mark.softhsm

TOKEN_KEYS = {
    "tcos-ds": KeyUsage.DIGITAL_SIGNATURE,
    "ecos-ds": KeyUsage.DIGITAL_SIGNATURE,
    "acb-ka": KeyUsage.KEY_AGREEMENT,
}


def _token_config(token: SoftHsmToken) -> Pkcs11Config:
    with Pkcs11KeyStore(token.module, token.label, token.user_pin) as store:
        for name, usage in TOKEN_KEYS.items():
            entry = pki().entry(name)
            store.import_private_key(
                name, entry.private_key(), key_usage=usage, certificate_der=entry.certificate.der
            )
    return Pkcs11Config(token.module, token.label, token.user_pin)


def _xml_signing_key_file(directory: Path) -> Path:
    entry = pki().entry("dcc-xml-sign")
    path = directory / "dcc-xml-sign.pem"
    key_pem = entry.private_key_pem
    assert key_pem is not None
    path.write_bytes(key_pem + entry.certificate.pem)
    return path


def test_switches_complete_with_commands_signed_in_the_token(
    env: Environment,
    softhsm_token: SoftHsmToken,  # noqa: F811
) -> None:
    config = _token_config(softhsm_token)
    runtime = runtime_for(
        env,
        ManualClock(NOW),
        pkcs11=config,
        key_sources=(_xml_signing_key_file(env.directory),),
    )
    assert dict(runtime.keys.custody) == {
        "tcos-ds": "pkcs11",
        "ecos-ds": "pkcs11",
        "acb-ka": "pkcs11",
        "dcc-xml-sign": "software",
    }
    assert "tcos-ds" not in runtime.keys.keystore and "ecos-ds" not in runtime.keys.keystore
    with running_server(runtime) as client:
        for meter, party, key in (
            (TCOS_METER, TCOS_PARTY, "tcos-ds"),
            (ECOS_METER, ECOS_PARTY, "ecos-ds"),
        ):
            counter = next_counter()
            rid = request_id(SUPPLIER_B, meter, counter)
            assert post(client, build_request(meter, counter)) == "I99"
            wait_until(lambda rid=rid: status_of(client, rid) == "Completed")
            handle = runtime.keys.signer_of(CosParty(key, party, key))
            assert isinstance(handle, Pkcs11Key)
            (command,) = runtime.store.commands.for_request(rid)
            assert command.signer == party
            verify_signature(decode_frame(command.payload), handle.public_key())
    runtime.close()


def test_a_key_both_in_the_token_and_in_software_is_refused_at_start(
    env: Environment,
    softhsm_token: SoftHsmToken,  # noqa: F811
) -> None:
    config = _token_config(softhsm_token)
    with pytest.raises(AmbiguousKey, match="tcos-ds"):
        open_runtime(env.config(pkcs11=config, key_sources=(env.pki_dir,)))
