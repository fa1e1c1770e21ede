"""DUIS code tables: response codes, DCC alert codes and the SRV 6.23 identifiers.

Every value is an enumeration value of DUIS Schema V5.4 (``sr:ResponseCode``,
the ``DCCAlertCode`` element of ``sr:DCCAlertMessage``), so a code that leaves
this package always passes the XSD. Meanings are given only where a public
source names them (docs/duis-xmldsig-smki.md §1.3); the E40+ and E0623xx
meanings live in SEC Appendix AD, which was not available, so the mapping of
receiver failures to those codes (:data:`openecos.duis.errors.FAILURE_RESPONSE_CODES`)
is provisional and kept in one table.
"""

from __future__ import annotations

from enum import StrEnum

#: DUIS ServiceReference / ServiceReferenceVariant of "Update Security Credentials (CoS)".
SERVICE_REFERENCE_6_23 = "6.23"
#: The DUIS schema version this package reads and writes.
SCHEMA_VERSION = "5.4"
#: Command variants DUIS allows for 6.23 (docs §1.1: all templates use CV 1, the
#: user never signs a GBCS pre-command for 6.23; confirm against the DUIS table).
ALLOWED_COMMAND_VARIANTS_6_23 = frozenset({1})


class ResponseCode(StrEnum):
    """``sr:ResponseCode`` values this service uses (a subset of the XSD enumeration)."""

    #: Success (a service response carrying the outcome).
    I0 = "I0"
    #: Acknowledgement: received, accepted and passed access control.
    I99 = "I99"
    #: Invalid User / User Role.
    E1 = "E1"
    #: User Role not permitted for the Service Reference.
    E2 = "E2"
    #: Invalid User status.
    E3 = "E3"
    #: User Role not authorised for the Device at that time.
    E4 = "E4"
    #: Device status incompatible.
    E5 = "E5"
    #: Service Request / device type mismatch.
    E11 = "E11"
    #: Invalid Request / CommandVariant combination.
    E12 = "E12"
    #: Request type not valid for the URL.
    E13 = "E13"
    #: Device does not exist.
    E19 = "E19"
    #: Cannot communicate with the Device.
    E20 = "E20"
    #: No response from the Device.
    E21 = "E21"
    #: Future-dated time-out.
    E30 = "E30"
    # Generic E40-E71: schema, signature, counter and duplicate failures; the
    # individual meanings are in SEC Appendix AD (not available, docs §7).
    E40 = "E40"
    E41 = "E41"
    E42 = "E42"
    E43 = "E43"
    E44 = "E44"
    E45 = "E45"
    E46 = "E46"
    E47 = "E47"
    E48 = "E48"
    E49 = "E49"
    E50 = "E50"
    E51 = "E51"
    E52 = "E52"
    E53 = "E53"
    E54 = "E54"
    E55 = "E55"
    E56 = "E56"
    E57 = "E57"
    E58 = "E58"
    E59 = "E59"
    E60 = "E60"
    E61 = "E61"
    E62 = "E62"
    E63 = "E63"
    E64 = "E64"
    E65 = "E65"
    E66 = "E66"
    E67 = "E67"
    E68 = "E68"
    E69 = "E69"
    E70 = "E70"
    E71 = "E71"
    E100 = "E100"
    # SRV 6.23-specific codes (meanings in SEC Appendix AD, not available).
    E062301 = "E062301"
    E062302 = "E062302"
    E062303 = "E062303"
    E062304 = "E062304"
    E062305 = "E062305"
    E062306 = "E062306"

    @property
    def is_error(self) -> bool:
        return self.value.startswith("E")


class DccAlertCode(StrEnum):
    """``DCCAlertCode`` of a ``sr:DCCAlertMessage``: AD1 (anomaly detection) and N1..N999.

    Which N-code goes with which DCC alert is fixed by DUIS, not by the XSD; the
    alert builders therefore take the code from the caller.
    """

    AD1 = "AD1"
    N1 = "N1"
    N2 = "N2"
    N3 = "N3"
    N4 = "N4"
    N5 = "N5"
    N6 = "N6"
    N7 = "N7"
    N8 = "N8"
    N9 = "N9"
    N10 = "N10"
    N11 = "N11"
    N12 = "N12"
    N13 = "N13"
    N14 = "N14"
    N15 = "N15"
    N16 = "N16"
    N17 = "N17"
    N18 = "N18"
    N19 = "N19"
    N20 = "N20"
    N21 = "N21"
    N22 = "N22"
    N23 = "N23"
    N24 = "N24"
    N25 = "N25"
    N26 = "N26"
    N27 = "N27"
    N28 = "N28"
    N29 = "N29"
    N30 = "N30"
    N31 = "N31"
    # N32 is absent from the XSD.
    N33 = "N33"
    N34 = "N34"
    N35 = "N35"
    N36 = "N36"
    N37 = "N37"
    N38 = "N38"
    N39 = "N39"
    N40 = "N40"
    N41 = "N41"
    N42 = "N42"
    N43 = "N43"
    N44 = "N44"
    N45 = "N45"
    N46 = "N46"
    N47 = "N47"
    N48 = "N48"
    N49 = "N49"
    N50 = "N50"
    N51 = "N51"
    N52 = "N52"
    N53 = "N53"
    N54 = "N54"
    N55 = "N55"
    N56 = "N56"
    N57 = "N57"
    N58 = "N58"
    N59 = "N59"
    N60 = "N60"
    N61 = "N61"
    N62 = "N62"
    N63 = "N63"
    N64 = "N64"
    N65 = "N65"
    N999 = "N999"
