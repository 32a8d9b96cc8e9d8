"""SOAP 1.1 envelopes for the simulator: safe parsing, schema validation, WCF-style replies."""

from __future__ import annotations

from copy import deepcopy
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

NS = "http://schemas.civica.co.uk/UHWeb/2013/03"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSD = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
WSDL_DIR = Path(__file__).resolve().parents[1] / "wsdl"

PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False, remove_blank_text=True
)


class SoapFault(Exception):
    def __init__(self, message: str, code: str = "s:Client", status: int = 500) -> None:
        super().__init__(message)
        self.message, self.code, self.status = message, code, status


class ServiceSchema:
    """One service's WSDL (served at ``?wsdl``) and its compiled XML Schema."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.wsdl_text = (WSDL_DIR / f"{name}.wsdl").read_text(encoding="utf-8")
        doc = etree.fromstring(self.wsdl_text.encode(), PARSER)
        schema_el = doc.find(f"{{{WSDL_NS}}}types/{{{XSD}}}schema")
        assert schema_el is not None
        self.schema = etree.XMLSchema(etree.fromstring(etree.tostring(schema_el), PARSER))
        self.operations = {
            op.get("name") for op in doc.iter(f"{{{WSDL_NS}}}operation") if op.get("name")
        }

    def wsdl_for(self, location: str) -> bytes:
        doc = etree.fromstring(self.wsdl_text.encode(), PARSER)
        for addr in doc.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address"):
            addr.set("location", location)
        return etree.tostring(doc, xml_declaration=True, encoding="utf-8", pretty_print=True)

    def validate(self, element: etree._Element) -> None:
        copy = deepcopy(element)
        if not self.schema.validate(etree.ElementTree(copy)):
            err = self.schema.error_log.last_error
            detail = err.message if err is not None else "invalid"
            raise SoapFault(
                "The formatter threw an exception while trying to deserialize the message: "
                f"{detail}",
                code="a:DeserializationFailed",
            )


def parse_request(body: bytes) -> tuple[str, etree._Element]:
    """Return (operation, operation element). DTDs and entities are refused like WCF does."""
    if b"<!DOCTYPE" in body[:2048] or b"<!ENTITY" in body:
        raise SoapFault("DTD is prohibited in this XML document.")
    try:
        root = etree.fromstring(body, PARSER)
    except etree.XMLSyntaxError:
        raise SoapFault("The message could not be parsed as XML.") from None
    if root.tag != f"{{{SOAP_ENV}}}Envelope":
        raise SoapFault("The message is not a SOAP 1.1 envelope.", code="s:VersionMismatch")
    body_el = root.find(f"{{{SOAP_ENV}}}Body")
    if body_el is None or len(body_el) != 1:
        raise SoapFault("The SOAP body must hold exactly one operation element.")
    op_el = body_el[0]
    qname = etree.QName(op_el)
    if qname.namespace != NS:
        raise SoapFault(
            f"Unexpected namespace {qname.namespace!r}.", code="a:DeserializationFailed"
        )
    return qname.localname, op_el


def child(el: etree._Element | None, name: str) -> etree._Element | None:
    if el is None:
        return None
    return el.find(f"{{{NS}}}{name}")


def value(el: etree._Element | None, name: str) -> str | None:
    c = child(el, name)
    if c is None or c.get(f"{{{XSI}}}nil") == "true":
        return None
    return (c.text or "").strip()


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, date):
        return f"{v.isoformat()}T00:00:00"
    if isinstance(v, Decimal):
        return format(v, "f")
    return str(v)


def build(parent: etree._Element, name: str, v: Any) -> None:
    """Append ``name`` with ``v``: None -> nil; dict -> ordered children; list of
    (item_name, dict) -> WCF array."""
    el = etree.SubElement(parent, f"{{{NS}}}{name}")
    if v is None:
        el.set(f"{{{XSI}}}nil", "true")
    elif isinstance(v, dict):
        for k, sub in v.items():
            build(el, k, sub)
    elif isinstance(v, tuple) and len(v) == 2 and isinstance(v[1], list):
        for item in v[1]:
            build(el, v[0], item)
    else:
        el.text = _fmt(v)


def reply(op: str, result: dict[str, Any]) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"s": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    wrapper = etree.SubElement(body, f"{{{NS}}}{op}Response", nsmap={None: NS})
    res = etree.SubElement(wrapper, f"{{{NS}}}{op}Result", nsmap={"i": XSI})
    for k, v in result.items():
        build(res, k, v)
    return etree.tostring(env, encoding="utf-8")


def fault(message: str, code: str = "s:Client") -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"s": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    f = etree.SubElement(body, f"{{{SOAP_ENV}}}Fault")
    fc = etree.SubElement(
        f,
        "faultcode",
        nsmap={
            "a": "http://schemas.microsoft.com/net/2005/12/windowscommunicationfoundation/dispatcher"
        },
    )
    fc.text = code
    etree.SubElement(
        f, "faultstring", {"{http://www.w3.org/XML/1998/namespace}lang": "en-GB"}
    ).text = message
    return etree.tostring(env, encoding="utf-8")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<GetPropertyListByPostCodeResponse xmlns="http://schemas.civica.co.uk/UHWeb/2013/03">
<GetPropertyListByPostCodeResult><ErrorMessage>&lol9;</ErrorMessage><Success>true</Success>
</GetPropertyListByPostCodeResult></GetPropertyListByPostCodeResponse></s:Body></s:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>
<GetPropertyListByPostCodeResponse xmlns="http://schemas.civica.co.uk/UHWeb/2013/03">
<GetPropertyListByPostCodeResult><ErrorMessage>&xxe;</ErrorMessage><Success>true</Success>
</GetPropertyListByPostCodeResult></GetPropertyListByPostCodeResponse></s:Body></s:Envelope>"""
