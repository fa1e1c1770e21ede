"""Hardened XML parsing and DUIS Schema V5.4 validation.

Theory of operation: bytes from the network become an lxml tree only through
:func:`parse_document`, which refuses what an attacker could use against the
parser (docs/duis-xmldsig-smki.md §4.5, §6 step 2): any DOCTYPE (so no
entity, internal or external, is ever declared, let alone resolved), DTD
loading, network access, huge-tree mode, and messages above a size cap.
Comments and processing instructions are dropped at parse time: they are
outside the XMLDSig ``URI=""`` node-set, so keeping them would let an attacker
split a signed text value without breaking the signature (§4.5).
Whitespace is kept: the receiver verifies the exact bytes it got (§4.5).

:class:`DuisSchema` compiles the XSD set once per directory (cached) with
lxml/libxml2, which is ~25x faster per message than xmlschema (0.03 ms vs
1.2 ms, §4.1). libxml2 silently skips ``schemaLocation="MMC Schema V5.4.xsd"``
because of the spaces, so the import is rewritten to ``MMC%20Schema%20V5.4.xsd``
before compiling, with the real path as base URL (§4.1).
"""

from __future__ import annotations

import threading
from functools import cache
from pathlib import Path

from lxml import etree  # type: ignore[import-untyped]  # no stubs installed

from openecos.duis.errors import (
    DuisFailure,
    SchemaInvalid,
    SchemaUnavailable,
    XmlRefused,
)

#: Default cap on a DUIS message (a 6.23 request is ~5 KiB).
DEFAULT_MAX_SIZE = 256 * 1024

NS_SR = "http://www.dccinterface.co.uk/ServiceUserGateway"
NS_RA = "http://www.dccinterface.co.uk/ResponseAndAlert"
NS_DS = "http://www.w3.org/2000/09/xmldsig#"

DUIS_XSD_NAME = "DUIS Schema V5.4.xsd"
MMC_XSD_NAME = "MMC Schema V5.4.xsd"

_parser_local = threading.local()


def _parser(minify: bool) -> etree.XMLParser:
    # lxml parsers are not thread-safe; one per thread, reused (creating one
    # per message costs more than the parse itself).
    attribute = "minifying" if minify else "parser"
    parser: etree.XMLParser | None = getattr(_parser_local, attribute, None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
            strip_cdata=True,
            collect_ids=False,
            remove_blank_text=minify,
        )
        setattr(_parser_local, attribute, parser)
    return parser


def parse_document(
    data: bytes, *, max_size: int = DEFAULT_MAX_SIZE, minify: bool = False
) -> etree._Element:
    """Parses untrusted DUIS bytes into the root element, or raises :class:`XmlRefused`.

    ``minify`` drops whitespace-only text between elements: use it only to
    prepare a document for signing (docs §4.5), never before verifying.
    """
    if not isinstance(data, bytes):
        raise XmlRefused("a DUIS message is bytes", failure=DuisFailure.MALFORMED_XML)
    if len(data) > max_size:
        raise XmlRefused(
            f"message of {len(data)} bytes exceeds the {max_size}-byte cap",
            failure=DuisFailure.TOO_LARGE,
        )
    # Refuse a DOCTYPE before libxml2 sees it: with entity resolution off it
    # would still build entity reference nodes, and a DTD has no place in DUIS
    # (the JDK tool sets disallow-doctype-decl, docs §2.5).
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data or _has_wide_doctype(data):
        raise XmlRefused(
            "DOCTYPE / entity declarations are not allowed in DUIS messages",
            failure=DuisFailure.FORBIDDEN_XML,
        )
    try:
        root = etree.fromstring(data, _parser(minify))
    except etree.XMLSyntaxError as exc:
        raise XmlRefused(f"not well-formed XML: {exc}", failure=DuisFailure.MALFORMED_XML) from exc
    except (ValueError, TypeError) as exc:  # e.g. encoding declarations lxml refuses
        raise XmlRefused(f"unreadable XML: {exc}", failure=DuisFailure.MALFORMED_XML) from exc
    # Belt and braces: the tree must not carry a DTD or an entity reference.
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise XmlRefused("DOCTYPE present", failure=DuisFailure.FORBIDDEN_XML)
    for _ in root.iter(etree.Entity):
        raise XmlRefused("entity reference present", failure=DuisFailure.FORBIDDEN_XML)
    return root


def _has_wide_doctype(data: bytes) -> bool:
    # A DOCTYPE in UTF-16/32 would slip past the byte search above. DUIS is
    # UTF-8 (docs §6 step 1), so refuse any BOM-marked wide encoding outright
    # by looking for the declaration in the decoded prefix.
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:1] == b"\x00" or data[1:2] == b"\x00":
        try:
            head = data[:4096].decode("utf-16", errors="ignore")
        except UnicodeError:
            return True
        return "<!DOCTYPE" in head or "<!ENTITY" in head
    return False


class DuisSchema:
    """DUIS Schema V5.4 (with the MMC and xmldsig schemas), compiled once per directory."""

    __slots__ = ("_lock", "_schema", "directory")

    def __init__(self, schema: etree.XMLSchema, directory: Path) -> None:
        self._schema = schema
        self._lock = threading.Lock()
        self.directory = directory

    @staticmethod
    def load(directory: str | Path) -> DuisSchema:
        """The compiled schema set in ``directory`` (cached per resolved path)."""
        return _load_schema(Path(directory).resolve())

    def validate(self, root: etree._Element) -> None:
        """Raises :class:`SchemaInvalid` unless ``root`` is valid (``sr:`` or ``ra:`` root)."""
        # An XMLSchema object keeps its error log on itself: serialise callers.
        with self._lock:
            if self._schema.validate(root):
                return
            error = self._schema.error_log.last_error
        detail = f"line {error.line}: {error.message}" if error is not None else "invalid"
        raise SchemaInvalid(f"fails DUIS Schema V5.4: {detail}")


@cache
def _load_schema(directory: Path) -> DuisSchema:
    main = directory / DUIS_XSD_NAME
    try:
        text = main.read_bytes()
    except OSError as exc:
        raise SchemaUnavailable(f"cannot read {main}: {exc}") from exc
    needle = f'schemaLocation="{MMC_XSD_NAME}"'.encode()
    if needle in text:
        text = text.replace(needle, b'schemaLocation="MMC%20Schema%20V5.4.xsd"')
    parser = etree.XMLParser(no_network=True, load_dtd=False, resolve_entities=False)
    try:
        doc = etree.fromstring(text, parser, base_url=main.as_uri())
        schema = etree.XMLSchema(etree.ElementTree(doc))
    except (etree.XMLSyntaxError, etree.XMLSchemaParseError) as exc:
        raise SchemaUnavailable(f"cannot compile {main}: {exc}") from exc
    return DuisSchema(schema, directory)
