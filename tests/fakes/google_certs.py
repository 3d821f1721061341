"""A fake of Google's OAuth2 v1 certs endpoint (`{kid: PEM certificate}`, Cache-Control max-age), and
the signer of the OIDC tokens Pub/Sub would send, so a push can be verified end to end offline.

    with FakeGoogleCerts() as certs:                  # GOOGLE_CERTS_URL = certs.certs_url
        token = certs.token({"aud": AUDIENCE, "email": SERVICE_ACCOUNT})
        ...                                            # push with `Authorization: Bearer {token}`
        assert certs.fetches == 1

Keys are RSA 2048, generated when the fake is built with a self-signed X.509 certificate each (what Google
publishes); tokens are signed by google-auth's own RSASigner, as Google's would be.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

from tests.fakes.server import FakeServer, Recorded, Reply

CERTS_PATH = "/oauth2/v1/certs"
ISSUER = "https://accounts.google.com"
# Seconds a token stays valid: what Google issues for push subscriptions.
TOKEN_LIFETIME_S = 3600


def new_key() -> tuple[str, str]:
    """A fresh RSA private key (PEM) and a self-signed certificate of its public key (PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-google-certs")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=2))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


class FakeGoogleCerts(FakeServer):
    """Serves the published certificates; `keys` holds the private halves for signing."""

    def __init__(self, *, max_age_s: int | None = 3600, key_count: int = 2) -> None:
        super().__init__()
        self.max_age_s = max_age_s
        self.keys: dict[str, str] = {}  # kid -> private key PEM
        self.published: dict[str, str] = {}  # kid -> certificate PEM (what the endpoint answers)
        for _ in range(key_count):
            self.add_key()
        self.route("GET", re.escape(CERTS_PATH), self._certs)

    @property
    def certs_url(self) -> str:
        """The URL to put in GOOGLE_CERTS_URL."""
        return self.url + CERTS_PATH

    @property
    def fetches(self) -> int:
        """How many times the certificates were fetched."""
        return len(self.requests_to("GET", re.escape(CERTS_PATH)))

    def add_key(self, *, publish: bool = True) -> str:
        """A new signing key (published unless told otherwise); returns its kid."""
        kid = uuid.uuid4().hex
        self.keys[kid], cert = new_key()
        if publish:
            self.published[kid] = cert
        return kid

    def token(self, claims: dict[str, Any] | None = None, *, kid: str | None = None, key_pem: str | None = None) -> str:
        """A signed OIDC token: Google's usual claims updated with `claims` (a None value drops the
        claim), signed by `kid`'s key (the first one by default), or by `key_pem` under that kid."""
        kid = kid or next(iter(self.published))
        now = int(time.time())
        base: dict[str, Any] = {
            "iss": ISSUER,
            "azp": "113774264463038321964",
            "sub": "113774264463038321964",
            "email_verified": True,
            "iat": now,
            "exp": now + TOKEN_LIFETIME_S,
        }
        payload = {k: v for k, v in {**base, **(claims or {})}.items() if v is not None}
        signer = crypt.RSASigner.from_string(key_pem or self.keys[kid], key_id=kid)
        return jwt.encode(signer, payload).decode()

    def _certs(self, request: Recorded, match: re.Match[str]) -> Reply:
        headers = (
            {}
            if self.max_age_s is None
            else {"Cache-Control": f"public, max-age={self.max_age_s}, must-revalidate, no-transform"}
        )
        return Reply(200, dict(self.published), headers)
