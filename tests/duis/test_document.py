"""Hardened parsing and XSD validation (docs/duis-xmldsig-smki.md §4.1, §4.5)."""

from __future__ import annotations

import pytest

from openecos.duis import (
    DuisFailure,
    DuisSchema,
    ResponseCode,
    SchemaInvalid,
    SchemaUnavailable,
    XmlRefused,
    parse_document,
)
from tests.duis.conftest import sample, template_623
from tests.reference import reference_path


def test_xxe_sample_is_refused_before_any_entity_is_resolved() -> None:
    # reference/duis/samples/duis-xxe.xml declares an external entity on /etc/passwd.
    with pytest.raises(XmlRefused) as info:
        parse_document(sample("duis-xxe.xml"))
    assert info.value.failure is DuisFailure.FORBIDDEN_XML
    assert "DOCTYPE" in str(info.value)
    assert info.value.response_code.is_error


@pytest.mark.parametrize(
    "document",
    [
        b'<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>',
        b'<?xml version="1.0"?>\n<!DOCTYPE r SYSTEM "http://127.0.0.1/x.dtd"><r/>',
        '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode(
            "utf-16"
        ),
    ],
)
def test_any_doctype_is_refused(document: bytes) -> None:
    with pytest.raises(XmlRefused) as info:
        parse_document(document)
    assert info.value.failure is DuisFailure.FORBIDDEN_XML


def test_undeclared_entity_is_malformed_not_resolved() -> None:
    with pytest.raises(XmlRefused) as info:
        parse_document(b"<r>&xxe;</r>")
    assert info.value.failure is DuisFailure.MALFORMED_XML


@pytest.mark.parametrize("document", [b"", b"<r>", b"not xml", b"<a></b>", b"\xff\xfe\x00<"])
def test_malformed_xml_gets_its_own_error(document: bytes) -> None:
    with pytest.raises(XmlRefused) as info:
        parse_document(document)
    assert info.value.failure is DuisFailure.MALFORMED_XML


def test_oversize_message_is_refused_before_parsing() -> None:
    document = b"<r>" + b"a" * 300 + b"</r>"
    with pytest.raises(XmlRefused) as info:
        parse_document(document, max_size=100)
    assert info.value.failure is DuisFailure.TOO_LARGE
    assert parse_document(document, max_size=len(document)).tag == "r"


def test_comments_and_processing_instructions_are_dropped() -> None:
    root = parse_document(b"<r><a>131<!---->23</a><?pi x?></r>")
    assert [child.tag for child in root] == ["a"]
    assert "".join(root[0].itertext()) == "13123"


@pytest.mark.parametrize("kind", ["immediate", "future-dated", "cancellation"])
def test_templates_are_schema_valid(schema: DuisSchema, kind: str) -> None:
    schema.validate(parse_document(template_623(kind)))


def test_schema_refuses_a_fourth_path_certificate(schema: DuisSchema) -> None:
    text = template_623("immediate")
    start = text.index(b"<sr:Certificate>")
    end = text.index(b"</sr:Certificate>") + len(b"</sr:Certificate>")
    cert = text[start:end]
    with pytest.raises(SchemaInvalid) as info:
        schema.validate(parse_document(text.replace(cert, cert * 4)))
    assert info.value.failure is DuisFailure.SCHEMA_INVALID
    assert info.value.response_code is ResponseCode.E40


def test_schema_resolves_the_mmc_import_with_spaces(schema: DuisSchema) -> None:
    # SMETS1 responses use ra: types from "MMC Schema V5.4.xsd"; a schema that
    # skipped the import would not know ra:GBCSResponse at all.
    mmc = (
        b'<ra:GBCSResponse xmlns:ra="http://www.dccinterface.co.uk/ResponseAndAlert" '
        b'schemaVersion="5.4"><ra:Header><ra:BusinessOriginatorID>00-DB-12-34-56-78-90-A0'
        b"</ra:BusinessOriginatorID><ra:BusinessTargetID>90-B3-D5-1F-30-01-00-00"
        b"</ra:BusinessTargetID><ra:OriginatorCounter>1</ra:OriginatorCounter></ra:Header>"
        b"<ra:Body><ra:ResponseMessage/></ra:Body></ra:GBCSResponse>"
    )
    schema.validate(parse_document(mmc))


def test_schema_is_compiled_once_per_directory() -> None:
    directory = reference_path("duis", "xsd")
    assert DuisSchema.load(directory) is DuisSchema.load(str(directory))


def test_missing_schema_directory_is_a_deployment_error(tmp_path: object) -> None:
    with pytest.raises(SchemaUnavailable):
        DuisSchema.load(f"{tmp_path}/nowhere")
