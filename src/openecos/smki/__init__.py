"""SMKI certificates: a typed view, certification path validation, test PKIs.

``SmkiCertificate`` reads one certificate's DER (role from the OU, EUI from
x500UniqueIdentifier or hardwareModuleName); ``validate_path`` judges a leaf,
its path and the caller's trust anchors and raises ``PathValidationError``
with a reason; ``create_test_pki``/``sandbox_pki`` mint certificates with the
SMKI profile; ``load_zaz1_keystore`` reads the DCC Boxed ZAZ1 key store.
Nothing here reads a clock; only ``testpki_files`` and ``load_zaz1_keystore``
touch files.
"""

from openecos.smki.certificate import SmkiCertificate, load_pem_certificates
from openecos.smki.errors import (
    CertificateError,
    CertificateProblem,
    KeystoreError,
    PathValidationError,
    PathValidationFailure,
    SmkiError,
)
from openecos.smki.extensions import Extension, X509KeyUsage, subject_key_identifier_method2
from openecos.smki.mint import (
    TEST_PKI_DEVICE_POLICY,
    TEST_PKI_ORGANISATION_POLICY,
    mint_certificate,
)
from openecos.smki.names import DistinguishedName, NameAttribute
from openecos.smki.path import (
    RTDS_DEVICE_POLICY,
    ZAZ1_ORGANISATION_POLICY,
    LeafExpectation,
    ValidatedPath,
    ValidationTime,
    check_leaf,
    validate_path,
    verify_signature,
)
from openecos.smki.sandbox import SANDBOX_PARTIES, PartyCertificate, sandbox_pki
from openecos.smki.testpki import PkiEntry, PkiEntryKind, TestPki, create_test_pki
from openecos.smki.testpki_files import load_test_pki, pki_index, write_test_pki
from openecos.smki.zaz1 import Zaz1Entry, load_zaz1_keystore, parse_zaz1_keystore

__all__ = [
    "RTDS_DEVICE_POLICY",
    "SANDBOX_PARTIES",
    "TEST_PKI_DEVICE_POLICY",
    "TEST_PKI_ORGANISATION_POLICY",
    "ZAZ1_ORGANISATION_POLICY",
    "CertificateError",
    "CertificateProblem",
    "DistinguishedName",
    "Extension",
    "KeystoreError",
    "LeafExpectation",
    "NameAttribute",
    "PartyCertificate",
    "PathValidationError",
    "PathValidationFailure",
    "PkiEntry",
    "PkiEntryKind",
    "SmkiCertificate",
    "SmkiError",
    "TestPki",
    "ValidatedPath",
    "ValidationTime",
    "X509KeyUsage",
    "Zaz1Entry",
    "check_leaf",
    "create_test_pki",
    "load_pem_certificates",
    "load_test_pki",
    "load_zaz1_keystore",
    "mint_certificate",
    "parse_zaz1_keystore",
    "pki_index",
    "sandbox_pki",
    "subject_key_identifier_method2",
    "validate_path",
    "verify_signature",
    "write_test_pki",
]
