"""Distinguished names of SMKI certificates, compared regardless of string type.

Theory of operation: SMKI CA subjects are PrintableString while the issuer
field of some end-entity certificates spells the same name in UTF8String
(docs/duis-xmldsig-smki.md §3.1), and `cryptography`'s name comparison treats
those as different names. Here a name keeps its DER verbatim (for display and
re-encoding) and a *match key* built as RFC 5280 §7.1 asks: the same RDNs in
the same order, each attribute compared by type and by its decoded text,
case-folded, with runs of white space collapsed. Attributes that are not
strings (the BIT STRING x500UniqueIdentifier) compare by their content octets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from openecos.smki import _der
from openecos.smki._der import DerError, Tlv

OID_COMMON_NAME = "2.5.4.3"
OID_ORGANIZATIONAL_UNIT = "2.5.4.11"
OID_X500_UNIQUE_IDENTIFIER = "2.5.4.45"

_SHORT_NAMES = {
    OID_COMMON_NAME: "CN",
    OID_ORGANIZATIONAL_UNIT: "OU",
    "2.5.4.10": "O",
    "2.5.4.6": "C",
}

_CODECS = {
    _der.UTF8_STRING: "utf-8",
    _der.PRINTABLE_STRING: "ascii",
    _der.IA5_STRING: "ascii",
    _der.TELETEX_STRING: "latin-1",
    _der.BMP_STRING: "utf-16-be",
    _der.UNIVERSAL_STRING: "utf-32-be",
}

_MatchKey = tuple[tuple[tuple[str, str, str | bytes], ...], ...]


@dataclass(frozen=True, slots=True)
class NameAttribute:
    """One AttributeTypeAndValue: its OID, the universal tag of its value, the content."""

    oid: str
    tag: int
    value: bytes

    @property
    def text(self) -> str | None:
        """The value as text when it is a string type, else ``None``."""
        codec = _CODECS.get(self.tag)
        return None if codec is None else self.value.decode(codec)

    def _match_key(self) -> tuple[str, str, str | bytes]:
        text = self.text
        if text is None:
            return (self.oid, f"raw:{self.tag}", self.value)
        return (self.oid, "text", " ".join(text.casefold().split()))

    def __str__(self) -> str:
        label = _SHORT_NAMES.get(self.oid, self.oid)
        text = self.text
        if text is None:  # RFC 4514 §2.4: #hex of the whole BER value, as Java prints it
            return f"{label}=#{_der.encode(self.tag, self.value).hex().upper()}"
        escaped = "".join("\\" + c if c in ',+"\\<>;' else c for c in text)
        if escaped.startswith(("#", " ")):
            escaped = "\\" + escaped
        if escaped.endswith(" "):
            escaped = escaped[:-1] + "\\ "
        return f"{label}={escaped}"


@dataclass(frozen=True, slots=True)
class DistinguishedName:
    """A Name: its DER as received and its RDNs in DER order."""

    der: bytes
    rdns: tuple[tuple[NameAttribute, ...], ...]
    _key: _MatchKey = field(compare=False, repr=False, hash=False)

    @classmethod
    def from_der(cls, der: bytes) -> DistinguishedName:
        """Reads a DER Name; raises ``DerError`` (a ``ValueError``) if malformed."""
        return cls.from_tlv(_der.read_single(der))

    @classmethod
    def from_tlv(cls, element: Tlv) -> DistinguishedName:
        rdns: list[tuple[NameAttribute, ...]] = []
        for rdn in _der.sequence_items(element):
            attributes: list[NameAttribute] = []
            for pair in _der.sequence_items(rdn, _der.SET):
                items = _der.sequence_items(pair)
                if len(items) != 2:
                    raise DerError("AttributeTypeAndValue is a pair", pair.offset)
                value = items[1]
                if value.constructed:
                    raise DerError("constructed attribute values are not supported", value.offset)
                attribute = NameAttribute(_der.decode_oid(items[0]), value.tag, value.content)
                try:
                    attribute.text  # noqa: B018 - decode now so a bad string fails here
                except UnicodeDecodeError as exc:
                    raise DerError(f"undecodable string: {exc.reason}", value.offset) from None
                attributes.append(attribute)
            if not attributes:
                raise DerError("empty RelativeDistinguishedName", rdn.offset)
            rdns.append(tuple(attributes))
        frozen = tuple(rdns)
        # Multi-valued RDNs are SETs: their order carries no meaning (RFC 5280 §7.1).
        key = tuple(tuple(sorted(a._match_key() for a in rdn)) for rdn in frozen)
        return cls(element.encoded, frozen, key)

    @classmethod
    def build(cls, *attributes: tuple[str, int, bytes]) -> DistinguishedName:
        """A name with one attribute per RDN, in the order given: ``(oid, tag, value)``."""
        der = _der.sequence(
            *(
                _der.encode(_der.SET, _der.sequence(_der.oid(o), _der.encode(tag, value)))
                for o, tag, value in attributes
            )
        )
        return cls.from_der(der)

    def matches(self, other: DistinguishedName) -> bool:
        """RFC 5280 §7.1 name matching, blind to the string type of each value."""
        return self._key == other._key

    @property
    def attributes(self) -> tuple[NameAttribute, ...]:
        return tuple(a for rdn in self.rdns for a in rdn)

    def values(self, oid: str) -> tuple[NameAttribute, ...]:
        return tuple(a for a in self.attributes if a.oid == oid)

    @property
    def common_name(self) -> str | None:
        found = self.values(OID_COMMON_NAME)
        return found[0].text if found else None

    @property
    def is_empty(self) -> bool:
        return not self.rdns

    def __str__(self) -> str:
        """RFC 4514 form, last RDN first (``CN=Z1,OU=07``), as DUIS X509IssuerName has it."""
        return ",".join("+".join(str(a) for a in rdn) for rdn in reversed(self.rdns))
