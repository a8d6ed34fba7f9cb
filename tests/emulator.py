"""A local emulator of Entra ID and Azure Resource Manager (container groups only), over HTTPS on
127.0.0.1, for the end-to-end tests, the README's "try it without an Azure account" and the benchmark.

It behaves like the real services where deploy.py can tell the difference:
- Entra ID: the OpenID discovery document and the client-credentials token endpoint, checking tenant,
  client ID and secret, answering errors in Entra's shape (AADSTS codes).
- ARM: PUT a container group (201 new, 200 existing, provisioningState Pending, only an
  Azure-AsyncOperation header and no Retry-After, like real ACI), the operation going
  Pending -> Creating -> Succeeded or Failed after `delay` seconds, GET with an instance view, DELETE.
  Only tokens it issued for the ARM audience are accepted; the body is checked the way ARM checks it.
- Faults on demand (add_fault), and every request recorded (requests).

    python -m tests.emulator --env-file .env.emulator [--delay 5]

starts it, writes the settings deploy.py needs to that file, and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography import x509

TENANT_ID = "72f988bf-0000-4000-8000-00000000c0de"
CLIENT_ID = "0a1b2c3d-0000-4000-8000-00000000a11e"
CLIENT_SECRET = "emulator-secret~not-for-azure-0123"
SUBSCRIPTION_ID = "0b5c41b0-0000-4000-8000-000000000001"
RESOURCE_GROUP = "rg-aci-private"
GROUP_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerInstance"
    r"/containerGroups/(?P<name>[^/]+)",
    re.IGNORECASE,
)
OPERATION_PATH = re.compile(
    r"/subscriptions/[^/]+/providers/Microsoft\.ContainerInstance/locations/[^/]+/operations/(?P<id>[^/]+)",
    re.IGNORECASE,
)
SUBNET_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+",
    re.IGNORECASE,
)
IDENTITY_PULL_API_VERSION = "2021-07-01"


@dataclass
class Fault:
    """The next request matching method and path (a regex) gets this answer instead of the real one."""

    method: str
    path: str = ".*"
    status: int = 500
    code: str = "InternalServerError"
    message: str = "The emulator was told to fail this request."
    headers: dict = field(default_factory=dict)
    drop: bool = False  # close the connection without any answer
    times: int = 1


@dataclass
class Record:
    method: str
    path: str
    query: dict
    status: int
    body: object = None
    at: float = field(default_factory=time.monotonic)  # when the answer was ready


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def arm_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


class Emulator:
    def __init__(self, delay: float = 0.0, outcome: str = "Succeeded", host: str = "127.0.0.1"):
        self.delay, self.outcome = delay, outcome  # outcome: "Succeeded", "Failed" (image pull) or "Crashing"
        self.tenant_id, self.client_id, self.client_secret = TENANT_ID, CLIENT_ID, CLIENT_SECRET
        self.certificate_pem: bytes | None = None  # the public certificate registered on the app, if any
        self.subscription_id, self.resource_groups = SUBSCRIPTION_ID, {RESOURCE_GROUP}
        self.requests: list[Record] = []
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (audience, expiry)
        self.groups: dict[str, dict] = {}  # lowercased group path -> stored state
        self.operations: dict[str, str] = {}  # operation id -> group path
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self._ca = trustme.CA()
        self._tmp = tempfile.TemporaryDirectory(prefix="aci-emulator-")
        self.ca_path = Path(self._tmp.name) / "emulator-ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(host, "localhost").configure_cert(context)
        self._server = ThreadingHTTPServer((host, 0), _handler_for(self))
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://{host}:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Emulator:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._tmp.cleanup()

    def settings(self) -> dict[str, str]:
        """What to put in an env file (or the environment) to point deploy.py here."""
        base = f"/subscriptions/{self.subscription_id}/resourceGroups/{RESOURCE_GROUP}/providers"
        return {
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_CLIENT_SECRET": self.client_secret,
            "AZURE_SUBSCRIPTION_ID": self.subscription_id,
            "AZURE_RESOURCE_GROUP": RESOURCE_GROUP,
            "AZURE_LOCATION": "westeurope",
            "AZURE_AUTHORITY_HOST": self.url,
            "AZURE_RESOURCE_MANAGER_ENDPOINT": self.url,
            "ACI_CONTAINER_GROUP_NAME": "aci-private-demo",
            "ACI_SUBNET_ID": f"{base}/Microsoft.Network/virtualNetworks/vnet-aci/subnets/snet-aci",
            "ACI_IDENTITY_ID": f"{base}/Microsoft.ManagedIdentity/userAssignedIdentities/id-aci-acrpull",
            "ACI_IMAGE": "acrprivatedemo.azurecr.io/aci-helloworld:latest",
        }

    def add_fault(self, method: str, path: str = ".*", **kwargs) -> None:
        with self.lock:
            self.faults.append(Fault(method, path, **kwargs))

    def take_fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and re.search(fault.path, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self.faults.remove(fault)
                    return fault
        return None

    # Entra ID -----------------------------------------------------------------------------------
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
    def cloud_metadata(self) -> dict:
        return {
            "name": "Emulator",
            "resourceManager": self.url + "/",
            "authentication": {"loginEndpoint": self.url + "/", "audiences": [self.url + "/"], "tenant": "common"},
            "suffixes": {"acrLoginServer": "azurecr.io"},
        }

    def account_list(self, path: str) -> dict:
        tenant = {"id": f"/tenants/{self.tenant_id}", "tenantId": self.tenant_id}
        subscription = {"id": f"/subscriptions/{self.subscription_id}", "subscriptionId": self.subscription_id,
                        "tenantId": self.tenant_id, "displayName": "Emulator", "state": "Enabled"}  # fmt: skip
        return {"value": [tenant if path == "/tenants" else subscription]}

    def subnet(self, path: str) -> dict:
        delegation = {"name": "aci", "properties": {"serviceName": "Microsoft.ContainerInstance/containerGroups"}}
        properties = {"addressPrefix": "10.0.0.0/24", "delegations": [delegation], "provisioningState": "Succeeded"}
        return {"id": path, "name": path.rsplit("/", 1)[1], "properties": properties}

    def check_token(self, authorization: str) -> dict | None:
        token = authorization.removeprefix("Bearer ")
        audience, expiry = self.tokens.get(token, ("", 0))
        if not authorization.startswith("Bearer ") or expiry < time.time():
            return arm_error("InvalidAuthenticationToken", "The access token is invalid.")
        if audience.rstrip("/") != self.url:
            return arm_error(
                "InvalidAuthenticationTokenAudience", f"The access token has an invalid audience '{audience}'."
            )
        return None

    def put_group(self, path: str, match: re.Match, body: dict) -> tuple[int, dict, dict]:
        problem = self.validate(match, body)
        if problem:
            return 400, arm_error(*problem), {}
        key = path.lower()
        with self.lock:
            existing = key in self.groups
            operation_id = str(uuid.uuid4())
            self.groups[key] = {"body": body, "name": match["name"], "path": path, "started": time.monotonic()}
            self.groups[key]["start_time"] = _now()
            self.operations[operation_id] = key
        location = body["location"]
        operation = f"{self.url}/subscriptions/{match['sub']}/providers/Microsoft.ContainerInstance/locations/"
        operation += f"{location}/operations/{operation_id}?api-version=2018-06-01"
        return (200 if existing else 201), self.group_view(key, pending=True), {"Azure-AsyncOperation": operation}

    def validate(self, match: re.Match, body: dict) -> tuple[str, str] | None:
        """The checks ARM and ACI make before accepting a group, for the rules this sample relies on."""
        if match["sub"].lower() != self.subscription_id.lower():
            return "SubscriptionNotFound", f"The subscription '{match['sub']}' could not be found."
        if match["rg"].lower() not in {rg.lower() for rg in self.resource_groups}:
            return "ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found."
        if not body.get("location"):
            return "LocationRequired", "The location property is required for this definition."
        properties = body.get("properties") or {}
        containers = properties.get("containers") or []
        if not containers or not properties.get("osType"):
            return "InvalidRequestContent", "The request content was invalid: 'containers' and 'osType' are required."
        for container in containers + (properties.get("initContainers") or []):
            if not container.get("name") or not (container.get("properties") or {}).get("image"):
                return "InvalidRequestContent", "Each container needs a name and an image."
        for container in containers:
            if not container["properties"].get("resources", {}).get("requests"):
                return "InvalidRequestContent", f"Container '{container['name']}' has no resource requests."
        identities = {key.lower() for key in (body.get("identity") or {}).get("userAssignedIdentities") or {}}
        for credential in properties.get("imageRegistryCredentials") or []:
            if not credential.get("server"):
                return "InvalidRequestContent", "Required property 'server' not found in JSON."
            if bool(credential.get("username")) == bool(credential.get("identity")):
                return "AmbiguousImageResitryCredentialType", (
                    f"The registry credential type in the 'imageRegistryCredentials' of container group "
                    f"'{match['name']}' cannot be detected. Please set exactly one of username or identity"
                )
            if credential.get("identity") and credential["identity"].lower() not in identities:
                return "InvalidImageRegistryIdentity", (
                    f"The identity in the 'imageRegistryCredentials' of container group '{match['name']}' "
                    "not found in container group identity list."
                )
        ip_address = properties.get("ipAddress") or {}
        subnets = properties.get("subnetIds") or []
        if ip_address.get("type") == "Private" and not subnets:
            return "PrivateIPAddressNotSupported", "A private IP address needs 'subnetIds'."
        if subnets and (ip_address.get("type") == "Public" or ip_address.get("dnsNameLabel")):
            return "PublicIPAddressNotSupported", "A container group in a subnet cannot have a public IP or DNS label."
        container_ports = {p["port"] for c in containers for p in c["properties"].get("ports") or []}
        if ip_address and {p["port"] for p in ip_address.get("ports") or []} - container_ports:
            return "InvalidIpAddressPorts", "Every port of the IP address must be opened by a container."
        for subnet in subnets:
            if not SUBNET_ID.fullmatch(subnet.get("id", "")):
                return "InvalidSubnetId", f"The subnet ID '{subnet.get('id')}' is invalid."
        return None

    def outcome_at(self, name: str) -> float:
        """When (time.monotonic) the last PUT of the group named reaches its outcome."""
        return next(g["started"] for g in self.groups.values() if g["name"] == name) + self.delay

    def phase(self, key: str) -> str:
        elapsed = time.monotonic() - self.groups[key]["started"]
        if elapsed >= self.delay:
            return "Failed" if self.outcome == "Failed" else "Succeeded"
        return "Pending" if elapsed < self.delay * 0.3 else "Creating"

    def group_view(self, key: str, pending: bool = False) -> dict:
        """The group as GET shows it now: the PUT body plus state, instance views and a private IP."""
        stored = self.groups[key]
        phase = "Pending" if pending else self.phase(key)
        body = json.loads(json.dumps(stored["body"]))
        properties = body["properties"]
        for variable in (v for c in properties["containers"] for v in c["properties"].get("environmentVariables", [])):
            variable.pop("secureValue", None)  # Azure never returns secure values
        properties["provisioningState"] = phase
        if properties.get("ipAddress") and phase == "Succeeded":
            properties["ipAddress"]["ip"] = "10.0.0.4"
        if not pending:
            for container in properties.get("initContainers") or []:
                container["properties"]["instanceView"] = self.container_view(
                    phase, container, stored["start_time"], init=True
                )
            for container in properties["containers"]:
                container["properties"]["instanceView"] = self.container_view(phase, container, stored["start_time"])
            state = {"Succeeded": "Running", "Failed": "Failed"}.get(phase, "Pending")
            properties["instanceView"] = {"state": state, "events": []}
        body.update(id=stored["path"], name=stored["name"], type="Microsoft.ContainerInstance/containerGroups")
        return body

    def container_view(self, phase: str, container: dict, started: str, init: bool = False) -> dict:
        image = container["properties"]["image"]

        def event(name: str, message: str, kind: str = "Normal", count: int = 1) -> dict:
            stamp = started
            return {"count": count, "firstTimestamp": stamp, "lastTimestamp": stamp, "name": name,
                    "message": message, "type": kind}  # fmt: skip

        if phase in ("Pending",):
            return {"restartCount": 0, "currentState": {"state": "Waiting", "detailStatus": "Pending"}, "events": []}
        events = [event("Pulling", f'pulling image "{image}"')]
        if phase == "Creating":
            return {"restartCount": 0, "currentState": {"state": "Waiting", "detailStatus": "ContainerCreating"},
                    "events": events}  # fmt: skip
        if phase == "Failed":
            failure = f'Failed to pull image "{image}": unauthorized: authentication required'
            events += [
                event("Failed", failure, "Warning"),
                event("BackOff", f'Back-off pulling image "{image}"', "Warning"),
            ]
            current = {"state": "Waiting", "detailStatus": "ImagePullBackOff"}
            return {"restartCount": 0, "currentState": current, "events": events}
        events += [event("Pulled", f'Successfully pulled image "{image}"'), event("Started", "Started container")]
        if init:
            current = {"state": "Terminated", "exitCode": 0, "detailStatus": "Completed"}
        elif self.outcome == "Crashing":
            current = {"state": "Waiting", "detailStatus": "CrashLoopBackOff: Back-off restarting failed"}
            return {"restartCount": 3, "currentState": current, "events": events}
        else:
            current = {"state": "Running", "startTime": _now(), "detailStatus": ""}
        return {"restartCount": 0, "currentState": current, "events": events}

    def operation_status(self, operation_id: str) -> tuple[int, dict]:
        key = self.operations.get(operation_id)
        if key is None or key not in self.groups:
            return 404, arm_error("OperationNotFound", f"Operation '{operation_id}' was not found.")
        phase = self.phase(key)
        body = {"id": operation_id, "status": phase, "startTime": self.groups[key]["start_time"],
                "properties": {"events": []}}  # fmt: skip
        if phase == "Failed":
            name = self.groups[key]["name"]
            body["error"] = {"code": "Failed", "message": f"Container group '{name}' failed: the image pull failed."}
        return 200, body


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


def _handler_for(emulator: Emulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else loopback responses stall ~45 ms on delayed ACKs

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self.dispatch("GET")

        def do_PUT(self) -> None:
            self.dispatch("PUT")

        def do_POST(self) -> None:
            self.dispatch("POST")

        def do_DELETE(self) -> None:
            self.dispatch("DELETE")

        def dispatch(self, method: str) -> None:
            url = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            fault = emulator.take_fault(method, url.path)
            if fault and fault.drop:
                emulator.requests.append(Record(method, url.path, parse_qs(url.query), 0))
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if fault:
                status, body, headers = fault.status, arm_error(fault.code, fault.message), fault.headers
            else:
                status, body, headers = self.route(method, url.path, parse_qs(url.query), raw)
            recorded = (
                json.loads(raw) if raw and self.headers.get("Content-Type", "").startswith("application/json") else None
            )
            emulator.requests.append(Record(method, url.path, parse_qs(url.query), status, recorded))
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def route(self, method: str, path: str, query: dict, raw: bytes) -> tuple[int, object, dict]:
            entra = re.fullmatch(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)", path)
            if entra and method == "GET" and entra[2].startswith("v2.0"):
                return (*emulator.openid_configuration(entra[1]), {})
            if entra and method == "POST":
                form = {key: values[0] for key, values in parse_qs(raw.decode()).items()}
                return (*emulator.token(entra[1], form), {})
            if path == "/metadata/endpoints" and method == "GET":  # the az CLI registers a cloud from it
                return 200, emulator.cloud_metadata(), {}
            problem = emulator.check_token(self.headers.get("Authorization", ""))
            if problem:
                return 401, problem, {"WWW-Authenticate": 'Bearer authorization_uri="", error="invalid_token"'}
            if method == "GET" and path in ("/subscriptions", "/tenants"):  # what az login lists
                return 200, emulator.account_list(path), {}
            if method == "GET" and SUBNET_ID.fullmatch(path):  # az container create checks the delegation
                return 200, emulator.subnet(path), {}
            operation = OPERATION_PATH.fullmatch(path)
            if operation and method == "GET":
                return (*emulator.operation_status(operation["id"]), {})
            group = GROUP_PATH.fullmatch(path)
            if not group:
                return 404, arm_error("InvalidResourceType", f"No route for {method} {path}."), {}
            if query.get("api-version", [""])[0] < IDENTITY_PULL_API_VERSION:
                message = f"Identity pulls need api-version {IDENTITY_PULL_API_VERSION} or later."
                return 400, arm_error("InvalidApiVersionParameter", message), {}
            key = path.lower()
            if method == "PUT":
                try:
                    body = json.loads(raw)
                except ValueError:
                    return 400, arm_error("InvalidRequestContent", "The request content was not valid JSON."), {}
                return emulator.put_group(path, group, body)
            if key not in emulator.groups:
                if method == "DELETE":
                    return 204, None, {}
                message = f"The Resource 'Microsoft.ContainerInstance/containerGroups/{group['name']}' under resource "
                message += f"group '{group['rg']}' was not found."
                return 404, arm_error("ResourceNotFound", message), {}
            if method == "GET":
                return 200, emulator.group_view(key), {}
            if method == "DELETE":
                body = emulator.group_view(key)
                with emulator.lock:
                    del emulator.groups[key]
                return 200, body, {}
            return 405, arm_error("MethodNotAllowed", f"{method} is not supported here."), {}

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="Local Entra ID + ARM emulator for deploy.py.")
    parser.add_argument("--env-file", default=".env.emulator", help="write deploy.py's settings here")
    parser.add_argument("--ca-file", default=".emulator-ca.pem", help="write the CA that deploy.py must trust here")
    parser.add_argument("--delay", type=float, default=5.0, help="seconds from PUT to the outcome (5)")
    parser.add_argument("--outcome", choices=["Succeeded", "Failed", "Crashing"], default="Succeeded")
    args = parser.parse_args()
    with Emulator(delay=args.delay, outcome=args.outcome) as emulator:
        Path(args.ca_file).write_bytes(emulator.ca_path.read_bytes())
        Path(args.env_file).write_text("".join(f"{k}={v}\n" for k, v in emulator.settings().items()))
        print(f"Emulating Entra ID and ARM at {emulator.url}; settings written to {args.env_file}", flush=True)
        print("In another shell, trusting the emulator's CA (Ctrl-C here stops it):", flush=True)
        print(f"  REQUESTS_CA_BUNDLE={args.ca_file} python deploy.py --env-file {args.env_file}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
