"""Entra ID: the OpenID discovery document, the token endpoint (client secret, certificate and federated
token), and the managed-identity endpoint that IMDS serves on an Azure machine."""

from __future__ import annotations

import secrets
import time
import uuid

import jwt
from cryptography import x509

from tests.emulator.common import _now


class EntraID:
    """Mixed into Emulator: the sign-in side."""

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
        if "client_assertion" in form:  # a certificate credential signs a JWT instead of sending a secret
            if not self.assertion_is_valid(form["client_assertion"], tenant):
                message = "Client assertion failed signature validation: the certificate is not registered on the app."
                return 401, entra_error("invalid_client", 700027, message)
        elif form.get("client_secret") != self.client_secret:
            message = "Invalid client secret provided. Ensure the secret being sent in the request is the client "
            message += f"secret value, not the client secret ID, for a secret added to app '{self.client_id}'."
            return 401, entra_error("invalid_client", 7000215, message)
        audience = form.get("scope", "").removesuffix("/.default")
        access_token = "emu." + secrets.token_urlsafe(24)
        with self.lock:
            self.tokens[access_token] = (audience, time.time() + 3600)
        return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": access_token}

    def assertion_is_valid(self, assertion: str, tenant: str) -> bool:
        if self.certificate_pem is None:
            return False
        key = x509.load_pem_x509_certificate(self.certificate_pem).public_key()
        audience = f"{self.url}/{tenant}/oauth2/v2.0/token"
        try:
            claims = jwt.decode(assertion, key, algorithms=["RS256", "PS256"], audience=audience)
        except jwt.InvalidTokenError:
            return False
        return claims.get("iss") == claims.get("sub") == self.client_id

    # ARM ----------------------------------------------------------------------------------------


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
