#!/usr/bin/python3
"""A minimal SAML 2.0 identity provider on pysaml2, for Guard's
interoperability test (sso/interop_test.go). It listens on 127.0.0.1 only.

  /metadata          the IdP's metadata (pysaml2's own)
  /sso/redirect      HTTP-Redirect binding SSO: signs in the fixed test user
                     without a form and answers with an auto-posting form
                     (HTTP-POST binding) carrying a Response that pysaml2
                     signs with xmlsec1 (Response and Assertion, RSA-SHA256)

Usage: idp.py PORT SP_METADATA_FILE KEY_PEM CERT_PEM
Prints "ready" on stdout once it listens.
"""

import sys
import tempfile
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT, saml, xmldsig
from saml2.authn_context import PASSWORDPROTECTEDTRANSPORT
from saml2.config import IdPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_EMAILADDRESS
from saml2.server import Server

port, sp_metadata, key_file, cert_file = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
base = "http://127.0.0.1:%d" % port

config = IdPConfig()
config.load({
    "entityid": base + "/metadata",
    "service": {
        "idp": {
            "name": "pysaml2 interop IdP",
            "endpoints": {
                "single_sign_on_service": [(base + "/sso/redirect", BINDING_HTTP_REDIRECT)],
            },
            "name_id_format": [NAMEID_FORMAT_EMAILADDRESS],
            "policy": {"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_URI}},
            "sign_response": True,
            "sign_assertion": True,
            "want_authn_requests_signed": False,
        },
    },
    "key_file": key_file,
    "cert_file": cert_file,
    "metadata": {"local": [sp_metadata]},
    "xmlsec_binary": "/usr/bin/xmlsec1",
    "signing_algorithm": xmldsig.SIG_RSA_SHA256,
    "digest_algorithm": xmldsig.DIGEST_SHA256,
    "tmp_path": tempfile.gettempdir(),
})
idp = Server(config=config)
metadata = str(entity_descriptor(config))

IDENTITY = {
    "mail": ["alice@corp.example"],
    "displayName": ["Alice Example"],
    "eduPersonAffiliation": ["Admins", "staff"],
}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, fmt, *args):
        sys.stderr.write("idp.py: " + (fmt % args) + "\n")

    def send(self, status, body, ctype="text/html; charset=utf-8"):
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlparse(self.path)
        if url.path == "/metadata":
            return self.send(200, metadata, "application/samlmetadata+xml")
        if url.path != "/sso/redirect":
            return self.send(404, "not found")
        query = urllib.parse.parse_qs(url.query)
        try:
            req = idp.parse_authn_request(query["SAMLRequest"][0], BINDING_HTTP_REDIRECT).message
            args = idp.response_args(req, [BINDING_HTTP_POST])
            resp = idp.create_authn_response(
                IDENTITY,
                userid="alice",
                name_id=saml.NameID(format=NAMEID_FORMAT_EMAILADDRESS, text="alice@corp.example"),
                authn={"class_ref": PASSWORDPROTECTEDTRANSPORT},
                sign_response=True,
                sign_assertion=True,
                sign_alg=xmldsig.SIG_RSA_SHA256,
                digest_alg=xmldsig.DIGEST_SHA256,
                **args)
            http = idp.apply_binding(BINDING_HTTP_POST, str(resp), args["destination"],
                                     query.get("RelayState", [""])[0], response=True)
        except Exception as e:  # the test shows this on failure
            sys.stderr.write("idp.py: %r\n" % (e,))
            return self.send(400, "bad request: %r" % (e,))
        body = http["data"]
        if isinstance(body, bytes):
            body = body.decode("utf-8")
        self.send(200, body)


server = HTTPServer(("127.0.0.1", port), Handler)
print("ready", flush=True)
server.serve_forever()
