"""A SAML identity provider played by the test: a key and certificate generated per instance,
responses built here and signed with xmlsec (python3-saml's ``add_sign``)."""

from __future__ import annotations

import base64
import datetime
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlparse
from xml.sax.saxutils import escape, quoteattr

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

ENTITY_ID = "https://idp.acme.test/saml"
SSO_URL = "https://idp.acme.test/saml/sso"
EMAIL_FORMAT = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"


def _key_and_cert(common_name: str) -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def _instant(delta_minutes: int = 0) -> str:
    moment = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=delta_minutes)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SamlRequest:
    """What our app asked the IdP for (the redirect binding's SAMLRequest)."""

    id: str
    acs_url: str
    sp_entity_id: str


@dataclass
class FakeSamlIdp:
    entity_id: str = ENTITY_ID
    sso_url: str = SSO_URL
    keys: tuple[str, str] = field(default_factory=lambda: _key_and_cert("idp.acme.test"))

    @property
    def cert_pem(self) -> str:
        return self.keys[1]

    def metadata(self) -> str:
        body = "".join(self.cert_pem.strip().splitlines()[1:-1])
        return f"""<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID={quoteattr(self.entity_id)}>
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>
      <ds:X509Certificate>{body}</ds:X509Certificate>
    </ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location={quoteattr(self.sso_url)}/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>"""

    @staticmethod
    def read_request(redirect_url: str) -> SamlRequest:
        query = parse_qs(urlparse(redirect_url).query)
        xml = OneLogin_Saml2_Utils.decode_base64_and_inflate(query["SAMLRequest"][0])
        root = OneLogin_Saml2_XML.to_etree(xml)
        issuer = root.find("{urn:oasis:names:tc:SAML:2.0:assertion}Issuer")
        assert issuer is not None
        assert issuer.text
        return SamlRequest(
            id=root.attrib["ID"],
            acs_url=root.attrib["AssertionConsumerServiceURL"],
            sp_entity_id=issuer.text,
        )

    def response(
        self,
        request: SamlRequest,
        *,
        email: str,
        sign: bool = True,
        signing_keys: tuple[str, str] | None = None,
        issuer: str | None = None,
    ) -> str:
        """A base64 SAMLResponse for the HTTP-POST binding, signed unless told otherwise."""
        assertion_id = f"_{secrets.token_hex(16)}"
        xml = f"""<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"
    xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"
    ID="_{secrets.token_hex(16)}" Version="2.0" IssueInstant="{_instant()}"
    Destination={quoteattr(request.acs_url)} InResponseTo={quoteattr(request.id)}>
  <saml:Issuer>{escape(issuer or self.entity_id)}</saml:Issuer>
  <samlp:Status>
    <samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/>
  </samlp:Status>
  <saml:Assertion xmlns:xs="http://www.w3.org/2001/XMLSchema"
      xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
      ID="{assertion_id}" Version="2.0" IssueInstant="{_instant()}">
    <saml:Issuer>{escape(issuer or self.entity_id)}</saml:Issuer>
    <saml:Subject>
      <saml:NameID Format="{EMAIL_FORMAT}">{escape(email)}</saml:NameID>
      <saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
        <saml:SubjectConfirmationData NotOnOrAfter="{_instant(5)}"
            Recipient={quoteattr(request.acs_url)} InResponseTo={quoteattr(request.id)}/>
      </saml:SubjectConfirmation>
    </saml:Subject>
    <saml:Conditions NotBefore="{_instant(-1)}" NotOnOrAfter="{_instant(5)}">
      <saml:AudienceRestriction>
        <saml:Audience>{escape(request.sp_entity_id)}</saml:Audience>
      </saml:AudienceRestriction>
    </saml:Conditions>
    <saml:AuthnStatement AuthnInstant="{_instant()}" SessionIndex="_{secrets.token_hex(8)}">
      <saml:AuthnContext>
        <saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef>
      </saml:AuthnContext>
    </saml:AuthnStatement>
    <saml:AttributeStatement>
      <saml:Attribute Name="email">
        <saml:AttributeValue xsi:type="xs:string">{escape(email)}</saml:AttributeValue>
      </saml:Attribute>
      <saml:Attribute Name="firstName">
        <saml:AttributeValue xsi:type="xs:string">Jane</saml:AttributeValue>
      </saml:Attribute>
    </saml:AttributeStatement>
  </saml:Assertion>
</samlp:Response>"""
        if sign:
            key, cert = signing_keys or self.keys
            xml = OneLogin_Saml2_Utils.add_sign(xml, key, cert)
            if isinstance(xml, bytes):
                xml = xml.decode()
        return base64.b64encode(xml.encode()).decode()
