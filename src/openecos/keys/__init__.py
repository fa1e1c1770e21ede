"""Key custody: one ``KeyStore`` interface, a software store and a PKCS#11 store.

Private keys are used only through a :class:`KeyHandle` (``sign_digest``,
``exchange``, ``public_key``, ``certificate_der``); with PKCS#11 they never
leave the token. See :mod:`openecos.keys.model` for the rules every store
keeps, :mod:`openecos.keys.sources` for the file formats it reads, and
:mod:`openecos.keys.hsm` for the token's custody attributes.

Quickstart::

    from pathlib import Path
    from openecos.keys import open_keystore
    from openecos.gbcs.codes import KeyUsage, RemotePartyRole
    from openecos.eui import Eui64

    import hashlib

    store = open_keystore([Path("zaz1-keystore.json")])
    tcos = store.key("Z1-transitionalCoS-ds")
    signature = tcos.sign_digest(hashlib.sha256(b"...").digest())  # 64-byte r‖s
    ka = store.lookup(Eui64.parse("90B3D51F30010008"), KeyUsage.KEY_AGREEMENT,
                      RemotePartyRole.LOAD_CONTROLLER)
"""

from openecos.keys.errors import (
    AmbiguousKey,
    DuplicateKey,
    InvalidDigest,
    InvalidKeyMaterial,
    InvalidPeerKey,
    KeyNotFound,
    KeyOperation,
    KeyStoreError,
    MalformedSignature,
    PrivateKeyMissing,
    TokenError,
    TokenFailure,
    WrongKeyUsage,
)
from openecos.keys.hsm import Pkcs11Key, Pkcs11KeyStore
from openecos.keys.model import (
    DIGEST_SIZE,
    SHARED_SECRET_SIZE,
    SIGNATURE_SIZE,
    KeyHandle,
    KeyInfo,
    KeyStore,
    der_signature,
    raw_signature,
)
from openecos.keys.pkcs11_session import Pkcs11Config
from openecos.keys.software import SoftwareKey, SoftwareKeyStore, load_private_key, transfer
from openecos.keys.sources import (
    add_source,
    load_key_file,
    load_pki_directory,
    load_zaz1_keystore,
    open_keystore,
)

__all__ = [
    "DIGEST_SIZE",
    "SHARED_SECRET_SIZE",
    "SIGNATURE_SIZE",
    "AmbiguousKey",
    "DuplicateKey",
    "InvalidDigest",
    "InvalidKeyMaterial",
    "InvalidPeerKey",
    "KeyHandle",
    "KeyInfo",
    "KeyNotFound",
    "KeyOperation",
    "KeyStore",
    "KeyStoreError",
    "MalformedSignature",
    "Pkcs11Config",
    "Pkcs11Key",
    "Pkcs11KeyStore",
    "PrivateKeyMissing",
    "SoftwareKey",
    "SoftwareKeyStore",
    "TokenError",
    "TokenFailure",
    "WrongKeyUsage",
    "add_source",
    "der_signature",
    "load_key_file",
    "load_pki_directory",
    "load_private_key",
    "load_zaz1_keystore",
    "open_keystore",
    "raw_signature",
    "transfer",
]
