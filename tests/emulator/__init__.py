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

One module per service: entra.py (Entra ID and managed identity), aci.py (ARM and container groups),
common.py (what they share); __main__.py is the command line.

runs deploy.py against it once, as a user would, and stops. Without --demo it writes the settings
deploy.py needs to --env-file and serves until Ctrl-C.
"""

from __future__ import annotations

import json
import random
import re
import ssl
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import trustme

from tests.emulator.aci import OPERATION_PATH, ContainerInstances, route_group
from tests.emulator.acr import REGISTRIES_PATH, Registries
from tests.emulator.authorization import ACR_PULL, ASSIGNMENTS_PATH, DEFINITION_PATH, Authorization
from tests.emulator.common import Fault, Record, arm_error
from tests.emulator.entra import EntraID
from tests.emulator.msi import IDENTITY_PATH, ManagedIdentities
from tests.emulator.network import NETWORK_PATH, Network

ROOT = Path(__file__).resolve().parent.parent.parent
TENANT_ID = "72f988bf-0000-4000-8000-00000000c0de"
CLIENT_ID = "0a1b2c3d-0000-4000-8000-00000000a11e"
CLIENT_SECRET = "emulator-secret~not-for-azure-0123"
SUBSCRIPTION_ID = "0b5c41b0-0000-4000-8000-000000000001"
RESOURCE_GROUP = "rg-aci-private"
ENTRA_PATH = re.compile(r"/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token)")


class Emulator(EntraID, ContainerInstances, Network, ManagedIdentities, Registries, Authorization):
    def __init__(self, delay: float = 0.0, outcome: str = "Succeeded", host: str = "127.0.0.1"):
        # outcome: Succeeded, Failed (image pull), Crashing (CrashLoopBackOff), Exited (exit code 1),
        # Completed (exit code 0), NoCapacity (operation Failed with an InsufficientCapacity event)
        self.delay, self.outcome = delay, outcome
        self.put_succeeded = False  # recordings: a PUT sometimes answers 201 already Succeeded
        self.tenant_id, self.client_id, self.client_secret = TENANT_ID, CLIENT_ID, CLIENT_SECRET
        self.certificate_pem: bytes | None = None  # the public certificate registered on the app, if any
        self.container_outcomes: dict[str, str] = {}  # container name -> its own outcome (else outcome)
        self.federated_credentials = []  # FederatedCredential trusts on the app registration
        self.managed_identities = set()  # client IDs of this machine's identities ("" = system-assigned)
        self.subscription_id, self.resource_groups = SUBSCRIPTION_ID, {RESOURCE_GROUP}
        self.requests: list[Record] = []
        self.tokens: dict[str, tuple[str, float]] = {}  # access token -> (audience, expiry)
        self.groups: dict[str, dict] = {}  # lowercased group path -> stored state
        self.restarts: dict[str, int] = {}  # lowercased group path -> how often its containers were restarted
        self.operations: dict[str, str] = {}  # operation id -> group path
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        self.random = random.Random(7)  # event order, shuffled per response (recordings)
        self.provider_state = "Registered"  # the subscription's Microsoft.ContainerInstance registration
        base = f"/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/{RESOURCE_GROUP}/providers"
        self.network_defaults(f"{base}/Microsoft.Network/virtualNetworks/vnet-aci/subnets/snet-aci")
        self.identity_defaults(f"{base}/Microsoft.ManagedIdentity/userAssignedIdentities/id-aci-acrpull")
        self.registry_defaults(RESOURCE_GROUP)
        self.authorization_defaults()  # the identity has had AcrPull on the registry for hours
        self.assign(ACR_PULL, self.identity["principalId"], self.registry_id(self.registry))
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
            "ACI_SUBNET_ID": self.subnet_id,
            "ACI_IDENTITY_ID": self.identity_id,
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


def route(emulator: Emulator, method: str, path: str, query: dict, raw: bytes, headers) -> tuple:
    """(status, body, headers) for one request."""
    entra = ENTRA_PATH.fullmatch(path)
    if entra and method == "GET" and entra[2].startswith("v2.0"):
        return (*emulator.openid_configuration(entra[1]), {})
    if entra and method == "POST":
        return (*emulator.token(entra[1], {k: v[0] for k, v in parse_qs(raw.decode()).items()}), {})
    if path == "/metadata/identity/oauth2/token" and method == "GET":  # IMDS, via AZURE_POD_IDENTITY_AUTHORITY_HOST
        return (*emulator.managed_identity_token(query, headers), {})
    if path == "/metadata/endpoints" and method == "GET":  # the az CLI registers a cloud from it
        return 200, emulator.cloud_metadata(), {}
    problem = emulator.check_token(headers.get("Authorization", ""))
    if problem:
        return 401, problem, {"WWW-Authenticate": 'Bearer authorization_uri="", error="invalid_token"'}
    if method == "GET" and path in ("/subscriptions", "/tenants"):  # what az login lists
        return 200, emulator.account_list(path), {}
    if method == "GET" and (operation := OPERATION_PATH.fullmatch(path)):
        return (*emulator.operation_status(operation["id"]), {})
    return route_reads(emulator, method, path, query) or route_group(emulator, method, path, query, raw)


def route_reads(emulator: Emulator, method: str, path: str, query: dict) -> tuple | None:
    """The reads of what a deployment depends on (what deploy.py --check and az container create read)."""
    if method != "GET":
        return None
    version = query.get("api-version", [""])[0]
    if match := NETWORK_PATH.fullmatch(path):
        return (*emulator.network(match), {})
    if match := IDENTITY_PATH.fullmatch(path):
        return (*emulator.identity_body(match, version), {})
    if match := REGISTRIES_PATH.fullmatch(path):
        return (*emulator.registry_list(match, query), {})
    if match := ASSIGNMENTS_PATH.fullmatch(path):
        return (*emulator.assignment_list(match, query), {})
    if match := DEFINITION_PATH.fullmatch(path):
        return (*emulator.definition(match), {})
    if path.lower() == f"/subscriptions/{emulator.subscription_id}/providers/microsoft.containerinstance":
        return (*emulator.provider(), {})
    return None


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
                status, body, headers = route(emulator, method, url.path, parse_qs(url.query), raw, self.headers)
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
