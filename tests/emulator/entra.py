"""Entra ID: the OpenID discovery document, the token endpoint (client secret, certificate and federated
token), and the managed-identity endpoint that IMDS serves on an Azure machine.

Sources: Entra's error texts as quoted in public issue threads ("docs"), what azure-identity 1.27.0 and
msal 1.39.0 send, read in their source and run against this emulator ("library"), or a "guess"."""

from __future__ import annotations

import secrets
import time
import uuid
from dataclasses import dataclass

import jwt
from cryptography import x509

from tests.emulator.common import _now

FEDERATED_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange"  # docs: what GitHub Actions and Entra agree on


@dataclass
class FederatedCredential:
    """A trust on the app registration: tokens from issuer, about subject, for audience (az ad app
    federated-credential create). public_key verifies the issuer's signature (Entra reads the issuer's JWKS)."""

    issuer: str
    subject: str
    public_key: object
    audience: str = TOKEN_EXCHANGE_AUDIENCE


class EntraID:
    """Mixed into Emulator: the sign-in side."""

    federated_credentials: list[FederatedCredential]
    secret_expired: bool = False  # the app's client secret has passed its end date
    managed_identities: set[str]  # client IDs of the identities on this "machine"; "" is a system-assigned one

    def openid_configuration(self, tenant: str) -> tuple[int, dict]:
        if tenant != self.tenant_id:
            return 400, entra_error("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self.url}/{tenant}"
        return 200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "issuer": f"{base}/v2.0",
            "tenant_region_scope": "WW",
        }

    def token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict]:
        if tenant != self.tenant_id:
            return 400, entra_error("invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        if form.get("grant_type") != "client_credentials":
            return 400, entra_error("unsupported_grant_type", 70003, "The app requested an unsupported grant type.")
        if form.get("client_id") != self.client_id:
            message = f"Application with identifier '{form.get('client_id')}' was not found in the directory."
            return 400, entra_error("unauthorized_client", 700016, message)
        problem = self.client_problem(tenant, form)
        if problem:
            return 401, entra_error("invalid_client", *problem)
        return 200, self.issue(form.get("scope", "").removesuffix("/.default"))

    def issue(self, audience: str) -> dict:
        access_token = "emu." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[access_token] = (audience, time.time() + 3600)
        return {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": access_token}

    def client_problem(self, tenant: str, form: dict[str, str]) -> tuple[int, str] | None:
        """(AADSTS code, message) when the client's proof is refused: a secret, or a signed assertion."""
        if "client_assertion" not in form:
            if form.get("client_secret") == self.client_secret and self.secret_expired:  # docs: AADSTS7000222
                return 7000222, f"The provided client secret keys for app '{self.client_id}' are expired."
            if form.get("client_secret") == self.client_secret:
                return None
            message = "Invalid client secret provided. Ensure the secret being sent in the request is the client "
            return (
                7000215,
                message + f"secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
            )
        if form.get("client_assertion_type") != FEDERATED_ASSERTION:
            return 700027, "Client assertion type is not supported."
        # library: a certificate credential signs iss == sub == client ID for the token URL; a federated
        # token comes from an outside issuer for api://AzureADTokenExchange. Read unverified to tell them apart.
        try:
            claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
        except jwt.InvalidTokenError:
            return 50027, "Invalid JWT token. The token is malformed."  # guess: the code for a malformed assertion
        if claims.get("iss") == claims.get("sub") == self.client_id:
            return self.certificate_problem(form["client_assertion"], tenant)
        return self.federated_problem(form["client_assertion"], claims)

    def certificate_problem(self, assertion: str, tenant: str) -> tuple[int, str] | None:
        message = "Client assertion failed signature validation: the certificate is not registered on the app."
        if self.certificate_pem is None:
            return 700027, message
        key = x509.load_pem_x509_certificate(self.certificate_pem).public_key()
        try:
            jwt.decode(assertion, key, algorithms=["RS256", "PS256"], audience=f"{self.url}/{tenant}/oauth2/v2.0/token")
        except jwt.InvalidTokenError:
            return 700027, message
        return None

    def federated_problem(self, assertion: str, claims: dict) -> tuple[int, str] | None:
        """A federated token, checked against the app's federated credentials: issuer, signature, time,
        audience, subject (case-sensitive). The order of these checks in Entra is a guess."""
        issuer, subject = claims.get("iss", ""), claims.get("sub", "")
        trusted = [c for c in self.federated_credentials if c.issuer == issuer]
        if not trusted:  # docs: AADSTS700211, quoting the issuer (Azure/azure-workload-identity#1200)
            return 700211, (f"No matching federated identity record found for presented assertion issuer '{issuer}'. "
                            "Please check your federated identity credential Subject, Audience and Issuer against "
                            "the presented assertion.")  # fmt: skip
        try:
            jwt.decode(assertion, trusted[0].public_key, algorithms=["RS256"], options={"verify_aud": False})
        except jwt.ExpiredSignatureError:  # docs: AADSTS700024 (Azure/login#180)
            return 700024, "Client assertion is not within its valid time range."
        except jwt.ImmatureSignatureError:
            return 700024, "Client assertion is not within its valid time range."
        except jwt.InvalidTokenError:  # guess: the code for a bad signature on a federated token
            return 700027, "Client assertion failed signature validation."
        audiences = claims.get("aud") if isinstance(claims.get("aud"), list) else [claims.get("aud")]
        trusted = [c for c in trusted if c.audience in audiences]
        if not trusted:  # issues (FACTS, Round 4): Entra's text for AADSTS700212
            return 700212, (f"No matching federated identity record found for presented assertion audience "
                            f"'{', '.join(map(str, audiences))}'. Please check your federated identity credential "
                            "Subject, Audience and Issuer against the presented assertion.")  # fmt: skip
        if any(c.subject == subject for c in trusted):
            return None
        if any(c.subject.lower() == subject.lower() for c in trusted):  # docs: case-sensitive since 2025
            message = f"No matching federated identity record found for presented assertion subject '{subject}'."
            # issues (FACTS, Round 4): Entra's text for AADSTS7002138
            return 7002138, message + (
                " The subject matches with case-insensitive comparison, but not with case-sensitive comparison."
            )
        return 700213, (
            f"No matching federated identity record found for presented assertion subject '{subject}'. "
            "Check your federated identity credential Subject, Audience and Issuer against the "
            "presented assertion."
        )  # fmt: skip (docs: Azure/login#482)

    def managed_identity_token(self, query: dict[str, list[str]], headers) -> tuple[int, dict]:
        """IMDS (library: msal/managed_identity.py): GET ...?api-version=2018-02-01&resource=...[&client_id=],
        header Metadata: true; an identity the machine does not have is a 400 (library, FACTS)."""
        if headers.get("Metadata") != "true":
            return 400, {"error": "invalid_request", "error_description": "Required metadata header not specified"}
        client_id = query.get("client_id", [""])[0]
        if client_id not in self.managed_identities:
            return 400, {"error": "invalid_request", "error_description": "Identity not found"}
        resource = query.get("resource", [""])[0]
        token = self.issue(resource)
        expires = str(int(time.time()) + 3600)  # library: strings, as IMDS sends them
        return 200, {"access_token": token["access_token"], "expires_in": "3600", "expires_on": expires,
                     "resource": resource, "token_type": "Bearer"}  # fmt: skip


def entra_error(error: str, code: int, description: str) -> dict:
    trace = uuid.uuid4()
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {description} Trace ID: {trace} Timestamp: {_now()}",
        "error_codes": [code],
        "timestamp": _now(),
        "trace_id": str(trace),
        "correlation_id": str(uuid.uuid4()),
    }
