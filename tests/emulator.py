"""A local emulator of Entra ID and Azure Resource Manager (container groups only), over HTTPS on
127.0.0.1, for the end-to-end tests, the README's one-command demo and the benchmark.

It behaves like the real services where deploy.py can tell the difference, and each rule names its
source: the ACI and ARM documentation on Microsoft Learn ("docs"), the ARM REST spec for api-version
2023-05-01 ("spec"), test recordings of real traffic in the azure-cli, azure-sdk-for-python, .NET and
PowerShell repositories ("recordings"), or a guess where no source shows the detail ("guess").
- Entra ID: the OpenID discovery document and the client-credentials token endpoint, checking tenant,
  client ID and secret or certificate, answering errors in Entra's shape (AADSTS codes).
- ARM: PUT a container group, the operation going Pending -> Creating -> Succeeded or Failed after
  `delay` seconds, GET with an instance view, container logs, DELETE. Only tokens it issued for the
  ARM audience are accepted; the body is checked the way ARM checks it.
- Faults on demand (add_fault), and every request recorded (requests).

    python -m tests.emulator --demo [--delay 7] [--outcome Crashing]

runs deploy.py against it once, as a user would, and stops. Without --demo it writes the settings
deploy.py needs to --env-file and serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import secrets
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography import x509

ROOT = Path(__file__).resolve().parent.parent
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
LOGS_PATH = re.compile(GROUP_PATH.pattern + r"/containers/(?P<container>[^/]+)/logs", re.IGNORECASE)
OPERATION_PATH = re.compile(
    r"/subscriptions/[^/]+/providers/Microsoft\.ContainerInstance/locations/[^/]+/operations/(?P<id>[^/]+)",
    re.IGNORECASE,
)
SUBNET_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+",
    re.IGNORECASE,
)
ENTRA_PATH = re.compile(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)")
IDENTITY_PULL_API_VERSION = "2021-07-01"  # docs: identity pulls need 2021-07-01 or later
MAX_PORTS_PER_IP = 5  # docs: "at most 5 ports per IP address"
# What one PUT may not change on a group that exists (docs, and Azure's message below).
FIXED_ON_UPDATE = {
    "OS type": lambda p: p.get("osType"),
    "restart policy": lambda p: p.get("restartPolicy") or "Always",
    "subnet": lambda p: sorted(s.get("id", "").lower() for s in p.get("subnetIds") or []),
    "CPU": lambda p: [c["properties"]["resources"]["requests"].get("cpu") for c in p["containers"]],
    "memory": lambda p: [c["properties"]["resources"]["requests"].get("memoryInGB") for c in p["containers"]],
}
OUTCOMES = ("Succeeded", "Failed", "Crashing", "Exited", "Completed", "NoCapacity")


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


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _stamp(datetime.now(timezone.utc))


def arm_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


class Emulator:
    def __init__(self, delay: float = 0.0, outcome: str = "Succeeded", host: str = "127.0.0.1"):
        # outcome: Succeeded, Failed (image pull), Crashing (CrashLoopBackOff), Exited (exit code 1),
        # Completed (exit code 0), NoCapacity (operation Failed with an InsufficientCapacity event)
        self.delay, self.outcome = delay, outcome
        self.put_succeeded = False  # recordings: a PUT sometimes answers 201 already Succeeded
        self.tenant_id, self.client_id, self.client_secret = TENANT_ID, CLIENT_ID, CLIENT_SECRET
        self.certificate_pem: bytes | None = None  # the public certificate registered on the app, if any
        self.subscription_id, self.resource_groups = SUBSCRIPTION_ID, {RESOURCE_GROUP}
        self.requests: list[Record] = []
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (audience, expiry)
        self.groups: dict[str, dict] = {}  # lowercased group path -> stored state
        self.operations: dict[str, str] = {}  # operation id -> group path
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.random = random.Random(7)  # event order, shuffled per response (recordings)
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
        key = path.lower()
        problem = self.validate(match, body) or self.refused_update(key, match["name"], body)
        if problem:
            return 400, arm_error(*problem), {}
        with self.lock:
            existing = key in self.groups
            operation_id = str(uuid.uuid4())
            started = time.monotonic() - (self.delay if self.put_succeeded else 0)
            self.groups[key] = {"body": body, "name": match["name"], "path": path, "started": started,
                                "start_time": datetime.now(timezone.utc)}  # fmt: skip
            self.operations[operation_id] = key
        # recordings: the operation URL has api-version 2018-06-01 and, lately, signature parameters too
        operation = f"{self.url}/subscriptions/{match['sub']}/providers/Microsoft.ContainerInstance/locations/"
        operation += f"{body['location']}/operations/{operation_id}?api-version=2018-06-01"
        operation += f"&t={time.time_ns()}&c=MIIHhzCCBm-gAwIBAgITHg&s={secrets.token_urlsafe(16)}&h=emu"
        # recordings: 201 for a new group, 200 for an existing one; only Azure-AsyncOperation, no Retry-After
        view = self.group_view(key, pending=not self.put_succeeded)
        return (200 if existing else 201), view, {"Azure-AsyncOperation": operation}

    def validate(self, match: re.Match, body: dict) -> tuple[str, str] | None:
        """The checks ARM and ACI make before accepting a group, for the rules this sample relies on."""
        properties = body.get("properties") or {}
        problem = self.check_scope(match, body, properties)
        for rule in (check_shape, check_credentials, check_network):
            problem = problem or rule(match["name"], properties)
        return problem

    def check_scope(self, match: re.Match, body: dict, properties: dict) -> tuple[str, str] | None:
        if match["sub"].lower() != self.subscription_id.lower():
            return "SubscriptionNotFound", f"The subscription '{match['sub']}' could not be found."
        if match["rg"].lower() not in {rg.lower() for rg in self.resource_groups}:
            return "ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found."
        if not body.get("location"):
            return "LocationRequired", "The location property is required for this definition."
        identities = {key.lower() for key in (body.get("identity") or {}).get("userAssignedIdentities") or {}}
        for credential in properties.get("imageRegistryCredentials") or []:
            if credential.get("identity") and credential["identity"].lower() not in identities:  # docs, catalogue
                return "InvalidImageRegistryIdentity", (
                    f"The identity in the 'imageRegistryCredentials' of container group '{match['name']}' "
                    "not found in container group identity list."
                )
        return None

    def refused_update(self, key: str, name: str, body: dict) -> tuple[str, str] | None:
        """docs: ACI refuses a PUT that changes the OS type, CPU, memory, GPU, restart policy or network of
        an existing group; other changes (image, environment, command) are applied in place."""
        stored = self.groups.get(key)
        if stored is None or self.phase(key) == "Failed":
            return None
        old, new = stored["body"]["properties"], body["properties"]
        if any(read(old) != read(new) for read in FIXED_ON_UPDATE.values()):
            return "InvalidContainerGroupUpdate", (
                f"The updates on container group '{name}' are invalid. If you are going to update the os type, "
                "restart policy, network profile, CPU, memory or GPU resources for a container group, you must "
                "delete it first and then create a new one."
            )
        return None

    def outcome_at(self, name: str) -> float:
        """When (time.monotonic) the last PUT of the group named reaches its outcome."""
        return next(g["started"] for g in self.groups.values() if g["name"] == name) + self.delay

    def phase(self, key: str) -> str:
        elapsed = time.monotonic() - self.groups[key]["started"]
        if elapsed >= self.delay:
            return "Failed" if self.outcome in ("Failed", "NoCapacity") else "Succeeded"
        return "Pending" if elapsed < self.delay * 0.3 else "Creating"

    def group_view(self, key: str, pending: bool = False) -> dict:
        """The group as GET shows it now: the PUT body plus state, instance views and a private IP."""
        stored = self.groups[key]
        phase = "Pending" if pending else self.phase(key)
        body = json.loads(json.dumps(stored["body"]))
        properties = body["properties"]
        for variable in (v for c in properties["containers"] for v in c["properties"].get("environmentVariables", [])):
            variable.pop("secureValue", None)  # docs: Azure never returns secure values
        properties["provisioningState"] = phase
        if properties.get("ipAddress") and phase == "Succeeded":
            properties["ipAddress"]["ip"] = "10.0.0.4"
        if not pending:
            for container in properties.get("initContainers") or []:
                container["properties"]["instanceView"] = self.container_view(phase, container, stored, init=True)
            for container in properties["containers"]:
                container["properties"]["instanceView"] = self.container_view(phase, container, stored)
            properties["instanceView"] = self.group_instance_view(phase, stored)
        body.update(id=stored["path"], name=stored["name"], type="Microsoft.ContainerInstance/containerGroups")
        return body

    def group_instance_view(self, phase: str, stored: dict) -> dict:
        state = {"Succeeded": "Running", "Failed": "Failed"}.get(phase, "Pending")
        events = []
        if phase == "Failed" and self.outcome == "NoCapacity":  # a real trace: the name ends with a period
            location = stored["body"]["location"]
            message = (f"The requested resource is not available in the location '{location}' at this moment. "
                       "Please retry with a different resource request or in another location.")  # fmt: skip
            events = [self.event(stored, 0, "InsufficientCapacity.", message, "Warning")]
        return {"state": state, "events": events}

    def event(self, stored: dict, second: int, name: str, message: str, kind: str = "Normal") -> dict:
        stamp = _stamp(stored["start_time"] + timedelta(seconds=second))
        return {"count": 1, "firstTimestamp": stamp, "lastTimestamp": stamp, "name": name, "message": message,
                "type": kind}  # fmt: skip

    def container_view(self, phase: str, container: dict, stored: dict, init: bool = False) -> dict:
        image = container["properties"]["image"]
        if phase == "Pending" or self.outcome == "NoCapacity":
            return {"restartCount": 0, "currentState": {"state": "Waiting", "detailStatus": "Pending"}, "events": []}
        events = [self.event(stored, 0, "Pulling", f'pulling image "{image}"')]
        current, restarts = {"state": "Waiting", "detailStatus": "ContainerCreating"}, 0
        if phase == "Failed":
            failure = f'Failed to pull image "{image}": unauthorized: authentication required'
            events += [self.event(stored, 1, "Failed", failure, "Warning"),
                       self.event(stored, 2, "BackOff", f'Back-off pulling image "{image}"', "Warning")]  # fmt: skip
            current = {"state": "Waiting", "detailStatus": "ImagePullBackOff"}
        elif phase == "Succeeded":
            events += [self.event(stored, 1, "Pulled", f'Successfully pulled image "{image}"'),
                       self.event(stored, 2, "Started", "Started container")]  # fmt: skip
            current, restarts = self.run_state(init)
        # recordings: events are not in time order, and the order differs between responses
        return {"restartCount": restarts, "currentState": current, "events": self.random.sample(events, len(events))}

    def run_state(self, init: bool) -> tuple[dict, int]:
        if init or self.outcome == "Completed":
            return {"state": "Terminated", "exitCode": 0, "detailStatus": "Completed"}, 0
        if self.outcome == "Exited":
            return {"state": "Terminated", "exitCode": 1, "detailStatus": "Error"}, 0
        if self.outcome == "Crashing":  # recordings: Succeeded while the container crash-loops happens
            return {"state": "Waiting", "detailStatus": "CrashLoopBackOff: Back-off restarting failed"}, 3
        return {"state": "Running", "startTime": _now(), "detailStatus": ""}, 0

    def logs(self, key: str, container: str, tail: int | None) -> tuple[int, dict]:
        if self.outcome in ("Crashing", "Exited"):
            lines = [f"worker {n}: connecting to the database at db.internal:5432" for n in range(1, 30)]
            lines.append("fatal: could not connect to the database after 29 attempts")
        else:
            lines = [f"{container}: listening on port 80"]
        return 200, {"content": "\n".join(lines[-tail:] if tail else lines) + "\n"}

    def operation_status(self, operation_id: str) -> tuple[int, dict]:
        key = self.operations.get(operation_id)
        if key is None or key not in self.groups:
            return 404, arm_error("OperationNotFound", f"Operation '{operation_id}' was not found.")
        phase = self.phase(key)
        # recordings: {id, status, startTime}, and lately no "properties" at all
        body = {"id": operation_id, "status": phase, "startTime": _stamp(self.groups[key]["start_time"])}
        if phase == "Failed":
            name = self.groups[key]["name"]
            cause = "the image pull failed" if self.outcome == "Failed" else "a container could not be placed"
            body["error"] = {"code": "Failed", "message": f"Container group '{name}' failed: {cause}."}
        return 200, body

    def delete_group(self, key: str) -> tuple[int, dict | None, dict]:
        """recordings: DELETE of an existing group answers 200 with its body; of a missing one, 204."""
        if key not in self.groups:
            return 204, None, {}
        body = self.group_view(key)
        with self.lock:
            del self.groups[key]
        return 200, body, {}


def check_shape(name: str, properties: dict) -> tuple[str, str] | None:
    containers = properties.get("containers") or []
    if not containers or not properties.get("osType"):  # spec: both are required
        return "InvalidRequestContent", "The request content was invalid: 'containers' and 'osType' are required."
    for container in containers + (properties.get("initContainers") or []):
        if not container.get("name") or not (container.get("properties") or {}).get("image"):
            return "InvalidRequestContent", "Each container needs a name and an image."
    for container in containers:
        if not container["properties"].get("resources", {}).get("requests"):
            return "InvalidRequestContent", f"Container '{container['name']}' has no resource requests."
    return None


def check_credentials(name: str, properties: dict) -> tuple[str, str] | None:
    for credential in properties.get("imageRegistryCredentials") or []:
        if not credential.get("server"):
            return "InvalidRequestContent", "Required property 'server' not found in JSON."
        if bool(credential.get("username")) == bool(credential.get("identity")):  # Azure's spelling (docs)
            return "AmbiguousImageResitryCredentialType", (
                f"The registry credential type in the 'imageRegistryCredentials' of container group "
                f"'{name}' cannot be detected. Please set exactly one of username or identity"
            )
    return None


def check_network(name: str, properties: dict) -> tuple[str, str] | None:
    ip_address = properties.get("ipAddress") or {}
    subnets = properties.get("subnetIds") or []
    ports = [port["port"] for port in ip_address.get("ports") or []]
    if ip_address.get("type") == "Private" and not subnets:
        return "PrivateIPAddressNotSupported", "A private IP address needs 'subnetIds'."
    if subnets and (ip_address.get("type") == "Public" or ip_address.get("dnsNameLabel")):
        return "PublicIPAddressNotSupported", "A container group in a subnet cannot have a public IP or DNS label."
    if len(ports) > MAX_PORTS_PER_IP:  # docs give the limit; the code and message are a guess
        return "InvalidIpAddressPortCount", (
            f"The IP address of container group '{name}' has {len(ports)} ports; at most {MAX_PORTS_PER_IP} are allowed"
        )
    container_ports = {p["port"] for c in properties["containers"] for p in c["properties"].get("ports") or []}
    if set(ports) - container_ports:
        return "InvalidIpAddressPorts", "Every port of the IP address must be opened by a container."
    for subnet in subnets:
        if not SUBNET_ID.fullmatch(subnet.get("id", "")):
            return "InvalidSubnetId", f"The subnet ID '{subnet.get('id')}' is invalid."
    return None


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


def route(emulator: Emulator, method: str, path: str, query: dict, raw: bytes, authorization: str) -> tuple:
    """(status, body, headers) for one request."""
    entra = ENTRA_PATH.fullmatch(path)
    if entra and method == "GET" and entra[2].startswith("v2.0"):
        return (*emulator.openid_configuration(entra[1]), {})
    if entra and method == "POST":
        return (*emulator.token(entra[1], {k: v[0] for k, v in parse_qs(raw.decode()).items()}), {})
    if path == "/metadata/endpoints" and method == "GET":  # the az CLI registers a cloud from it
        return 200, emulator.cloud_metadata(), {}
    problem = emulator.check_token(authorization)
    if problem:
        return 401, problem, {"WWW-Authenticate": 'Bearer authorization_uri="", error="invalid_token"'}
    if method == "GET" and path in ("/subscriptions", "/tenants"):  # what az login lists
        return 200, emulator.account_list(path), {}
    if method == "GET" and SUBNET_ID.fullmatch(path):  # az container create checks the delegation
        return 200, emulator.subnet(path), {}
    if method == "GET" and (operation := OPERATION_PATH.fullmatch(path)):
        return (*emulator.operation_status(operation["id"]), {})
    return route_group(emulator, method, path, query, raw)


def route_group(emulator: Emulator, method: str, path: str, query: dict, raw: bytes) -> tuple:
    logs, group = LOGS_PATH.fullmatch(path), GROUP_PATH.fullmatch(path)
    match = logs or group
    if not match:
        return 404, arm_error("InvalidResourceType", f"No route for {method} {path}."), {}
    if query.get("api-version", [""])[0] < IDENTITY_PULL_API_VERSION:
        message = f"Identity pulls need api-version {IDENTITY_PULL_API_VERSION} or later."
        return 400, arm_error("InvalidApiVersionParameter", message), {}
    key = path[: match.end("name")].lower()
    if method == "PUT" and group:
        try:
            return emulator.put_group(path, group, json.loads(raw))
        except ValueError:
            return 400, arm_error("InvalidRequestContent", "The request content was not valid JSON."), {}
    if method == "DELETE" and group:
        return emulator.delete_group(key)
    if key not in emulator.groups:
        message = f"The Resource 'Microsoft.ContainerInstance/containerGroups/{match['name']}' under resource "
        return 404, arm_error("ResourceNotFound", message + f"group '{match['rg']}' was not found."), {}
    if method == "GET" and logs:
        return (*emulator.logs(key, logs["container"], int(query.get("tail", ["0"])[0]) or None), {})
    if method == "GET":
        return 200, emulator.group_view(key), {}
    return 405, arm_error("MethodNotAllowed", f"{method} is not supported here."), {}


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
                authorization = self.headers.get("Authorization", "")
                status, body, headers = route(emulator, method, url.path, parse_qs(url.query), raw, authorization)
            is_json = self.headers.get("Content-Type", "").startswith("application/json")
            recorded = json.loads(raw) if raw and is_json else None
            emulator.requests.append(Record(method, url.path, parse_qs(url.query), status, recorded))
            payload = json.dumps(body).encode() if body is not None else b""
            self.send_response(status)
            for name, value in {"Content-Type": "application/json; charset=utf-8", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


def demo(emulator: Emulator) -> int:
    """Run deploy.py once against the emulator, exactly as a user would; its exit code."""
    with tempfile.TemporaryDirectory(prefix="aci-demo-") as folder:
        env_file = Path(folder) / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in emulator.settings().items()))
        print(f"Emulating Entra ID and Azure Resource Manager at {emulator.url} (no Azure account needed).")
        print("$ python deploy.py", flush=True)
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(emulator.ca_path)}  # trust the emulator's own CA
        code = subprocess.run(
            [sys.executable, str(ROOT / "deploy.py"), "--env-file", str(env_file)], env=env
        ).returncode
    print(f"deploy.py exited with {code}; the emulator has stopped.")
    return code


def main() -> int:
    parser = argparse.ArgumentParser(description="Local Entra ID + ARM emulator for deploy.py.")
    parser.add_argument("--demo", action="store_true", help="run deploy.py against it once, then stop")
    parser.add_argument("--env-file", default=".env.emulator", help="without --demo: write deploy.py's settings here")
    parser.add_argument("--ca-file", default=".emulator-ca.pem", help="without --demo: write the CA to trust here")
    parser.add_argument("--delay", type=float, default=7.0, help="seconds from PUT to the outcome (7)")
    parser.add_argument("--outcome", choices=OUTCOMES, default="Succeeded", help="how the deployment ends")
    args = parser.parse_args()
    with Emulator(delay=args.delay, outcome=args.outcome) as emulator:
        if args.demo:
            return demo(emulator)
        Path(args.ca_file).write_bytes(emulator.ca_path.read_bytes())
        Path(args.env_file).write_text("".join(f"{k}={v}\n" for k, v in emulator.settings().items()))
        print(f"Emulating Entra ID and ARM at {emulator.url}; settings written to {args.env_file}", flush=True)
        print("In another shell, trusting the emulator's CA (Ctrl-C here stops it):", flush=True)
        print(f"  REQUESTS_CA_BUNDLE={args.ca_file} python deploy.py --env-file {args.env_file}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
