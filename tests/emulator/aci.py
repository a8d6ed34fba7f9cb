"""Azure Resource Manager for container groups: PUT with its long-running operation, GET with instance
views, container logs and DELETE, checking the body the way ARM and ACI check it."""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from datetime import datetime, timedelta, timezone

from tests.emulator.common import _now, _stamp, arm_error

GROUP_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ContainerInstance"
    r"/containerGroups/(?P<name>[^/]+)",
    re.IGNORECASE,
)
LOGS_PATH = re.compile(GROUP_PATH.pattern + r"/containers/(?P<container>[^/]+)/logs", re.IGNORECASE)
RESTART_PATH = re.compile(GROUP_PATH.pattern + r"/restart", re.IGNORECASE)
OPERATION_PATH = re.compile(
    r"/subscriptions/[^/]+/providers/Microsoft\.ContainerInstance/locations/[^/]+/operations/(?P<id>[^/]+)",
    re.IGNORECASE,
)
SUBNET_ID = re.compile(
    r"/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.Network/virtualNetworks/[^/]+/subnets/[^/]+",
    re.IGNORECASE,
)
IDENTITY_PULL_API_VERSION = "2021-07-01"  # docs: identity pulls need 2021-07-01 or later
MAX_PORTS_PER_IP = 5  # docs: "at most 5 ports per IP address"
# What one PUT may not change on a group that exists (docs, and Azure's message below).
FIXED_ON_UPDATE = {
    "OS type": lambda p: p.get("osType"),
    "restart policy": lambda p: p.get("restartPolicy") or "Always",
    "subnet": lambda p: sorted(s.get("id", "").lower() for s in p.get("subnetIds") or []),
    "CPU": lambda p: {c["name"]: c["properties"]["resources"]["requests"].get("cpu") for c in p["containers"]},
    "memory": lambda p: {
        c["name"]: c["properties"]["resources"]["requests"].get("memoryInGB") for c in p["containers"]
    },
}
OUTCOMES = ("Succeeded", "Failed", "Crashing", "Unstable", "Exited", "Completed", "NoCapacity")
# The regions this emulator offers container groups in, as the provider lists them (display names).
REGIONS = ("West Europe", "North Europe", "Sweden Central", "UK South", "East US", "East US 2", "West US 2",
           "Central US", "Australia East", "Japan East")  # fmt: skip
UNSTABLE_SECONDS = 3  # how long an Unstable container runs after Succeeded before it crash-loops


class ContainerInstances:
    """Mixed into Emulator: the ARM side."""

    def provider(self) -> tuple[int, dict]:
        """The subscription's registration of Microsoft.ContainerInstance (provider_state), as ARM lists it."""
        return 200, {"id": f"/subscriptions/{self.subscription_id}/providers/Microsoft.ContainerInstance",
                     "namespace": "Microsoft.ContainerInstance", "registrationState": self.provider_state,
                     "registrationPolicy": "RegistrationRequired",
                     # FACTS (Regions): each resource type with its regions, as display names
                     "resourceTypes": [{"resourceType": "containerGroups", "locations": list(REGIONS)}]}  # fmt: skip

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
            return 500 if problem[0] == "InternalServerError" else 400, arm_error(*problem), {}
        with self.lock:
            existing = key in self.groups
            if existing:  # docs: a PUT on a group that exists restarts its containers, even with nothing changed
                self.restarts[key] = self.restarts.get(key, 0) + 1
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

    def restart_group(self, key: str, match: re.Match) -> tuple[int, None, dict]:
        """spec ContainerGroups_Restart: no body; recordings: 204 with Azure-AsyncOperation. The containers start
        again, pulling their images anew (docs), so the group goes through its delay once more."""
        with self.lock:
            stored = self.groups[key]
            self.restarts[key] = self.restarts.get(key, 0) + 1
            stored.update(started=time.monotonic(), start_time=datetime.now(timezone.utc), stopped=False)
            operation_id = str(uuid.uuid4())
            self.operations[operation_id] = key
        operation = f"{self.url}/subscriptions/{match['sub']}/providers/Microsoft.ContainerInstance/locations/"
        operation += f"{stored['body']['location']}/operations/{operation_id}?api-version=2018-06-01"
        return 204, None, {"Azure-AsyncOperation": operation}

    def validate(self, match: re.Match, body: dict) -> tuple[str, str] | None:
        """The checks ARM and ACI make before accepting a group, for the rules this sample relies on."""
        properties = body.get("properties") or {}
        problem = self.check_scope(match, body, properties) or self.check_location(match, body)
        for rule in (check_shape, check_credentials, check_network):
            problem = problem or rule(match["name"], properties)
        return problem or self.check_dependencies(match["name"], properties)

    def check_dependencies(self, name: str, properties: dict) -> tuple[str, str] | None:
        """What the resources around the group decide (FACTS: synchronous errors on the PUT). The subnet must
        be delegated; the identity must hold a pull role for the registry's mode, and a
        registry that denies public access must let trusted services in (error catalogue: InaccessibleImage)."""
        subnets = [s.get("id", "").lower() for s in properties.get("subnetIds") or []]
        if self.subnet_id.lower() in subnets and not self.delegated():
            # issues (FACTS, Round 4: Azure/dev-box-images#8): Azure's text
            return "SubnetMissingRequiredDelegation", (
                f"Subnet missing required delegation 'Microsoft.ContainerInstance' for container group '{name}'."
            )
        credentials = {
            c["server"].lower(): c.get("identity", "") for c in properties.get("imageRegistryCredentials") or []
        }
        for container in properties["containers"] + (properties.get("initContainers") or []):
            image = container["properties"]["image"]
            registry = next((r for r in self.registries if image.lower().startswith(r["name"] + ".azurecr.io/")), None)
            identity = (
                self.identities.get(credentials.get(f"{registry['name']}.azurecr.io", "").lower()) if registry else None
            )
            if (
                registry
                and identity
                and (
                    (registry["public_access"] == "Disabled" or registry["default_action"] == "Deny")
                    and registry["bypass"] != "AzureServices"
                    or not self.can_pull(identity["principalId"], self.registry_id(registry), registry["mode"])
                )
            ):
                return "InaccessibleImage", (
                    f"The image '{image}' in container group '{name}' is not accessible. Please check the image and "
                    "registry credential."
                )
        return None

    def check_location(self, match: re.Match, body: dict) -> tuple[str, str] | None:
        """ARM (FACTS, Regions): a region the type is not offered in, and a group that exists elsewhere."""
        location = str(body.get("location", "")).replace(" ", "").lower()
        offered = [region.replace(" ", "").lower() for region in REGIONS]
        if location and location not in offered:
            return "LocationNotAvailableForResourceType", (
                f"The provided location '{body['location']}' is not available for resource type "
                f"'Microsoft.ContainerInstance/containerGroups'. List of available regions for the resource type is "
                f"'{','.join(offered)}'."
            )
        stored = self.groups.get(f"/subscriptions/{match['sub']}/resourcegroups/{match['rg']}/providers/"
                                 f"microsoft.containerinstance/containergroups/{match['name']}".lower())  # fmt: skip
        was = stored["body"]["location"] if stored else location
        if was.replace(" ", "").lower() != location:
            return "InvalidResourceLocation", (
                f"The resource '{match['name']}' already exists in location '{was}' in resource group '{match['rg']}'. "
                f"A resource with the same name cannot be created in location '{body['location']}'. Please select a "
                "new resource name."
            )
        return None

    def check_scope(self, match: re.Match, body: dict, properties: dict) -> tuple[str, str] | None:
        """ARM's own checks: the codes are ARM's (error catalogue, azure-powershell#12168); the texts a guess."""
        if match["sub"].lower() != self.subscription_id.lower():
            return "SubscriptionNotFound", f"The subscription '{match['sub']}' could not be found."
        if match["rg"].lower() not in {rg.lower() for rg in self.resource_groups}:
            return "ResourceGroupNotFound", f"Resource group '{match['rg']}' could not be found."
        if not body.get("location"):  # docs (FACTS: ARM rejects a body without it); the code is a guess
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
        # Per container, for the containers in both: whether adding or removing one is refused is unverified.
        same = [name for name in new_names(new) if name in new_names(old)]
        if any(fixed(read(old), same) != fixed(read(new), same) for read in FIXED_ON_UPDATE.values()):
            return "InvalidContainerGroupUpdate", (
                f"The updates on container group '{name}' are invalid. If you are going to update the os type, "
                "restart policy, network profile, CPU, memory or GPU resources for a container group, you must "
                "delete it first and then create a new one."
            )
        return None

    def container_outcome(self, name: str) -> str:
        """Each container's outcome is its own (container_outcomes), else the group's."""
        return self.container_outcomes.get(name, self.outcome)

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
        every = properties["containers"] + (properties.get("initContainers") or [])
        for variable in (v for c in every for v in c["properties"].get("environmentVariables") or []):
            variable.pop("secureValue", None)  # docs: Azure never returns secure values
        properties["provisioningState"] = phase
        if properties.get("ipAddress") and phase == "Succeeded":
            properties["ipAddress"]["ip"] = "10.0.0.4"
        add_what_azure_adds(body, properties)
        if not pending:
            for container in properties.get("initContainers") or []:
                container["properties"]["instanceView"] = self.container_view(phase, container, stored, init=True)
            for container in properties["containers"]:
                container["properties"]["instanceView"] = self.container_view(phase, container, stored)
            properties["instanceView"] = self.group_instance_view(phase, stored, properties["containers"])
            if stored.get("stopped"):  # docs: az container stop; the group keeps its settings
                properties["instanceView"]["state"] = "Stopped"
        body.update(id=stored["path"], name=stored["name"], type="Microsoft.ContainerInstance/containerGroups")
        return body

    def group_instance_view(self, phase: str, stored: dict, containers: list[dict]) -> dict:
        state = {"Succeeded": "Running", "Failed": "Failed"}.get(phase, "Pending")
        views = [c["properties"]["instanceView"]["currentState"] for c in containers]
        run_once = stored["body"]["properties"].get("restartPolicy") in ("Never", "OnFailure")
        if phase == "Succeeded" and run_once and all(v["state"] == "Terminated" for v in views):
            # docs (container-state.md): a finished run-once group is Succeeded, or Failed under Never
            state = "Succeeded" if all(v.get("exitCode") == 0 for v in views) else "Failed"
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
        image, outcome = container["properties"]["image"], self.container_outcome(container["name"])
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
            current, restarts = self.run_state(init, outcome, stored)
        # recordings: events are not in time order, and the order differs between responses
        view = {"restartCount": restarts, "currentState": current, "events": self.random.sample(events, len(events))}
        if "previousState" in current:  # spec: beside currentState, after a restart
            view["previousState"] = current.pop("previousState")
        return view

    def run_state(self, init: bool, outcome: str, stored: dict) -> tuple[dict, int]:
        policy = stored["body"]["properties"].get("restartPolicy") or "Always"
        exit_code = {"Completed": 0, "Exited": 1}.get(outcome)
        # docs (container-instances-restart-policy.md): Always restarts a container that exits, OnFailure one that
        # exits with an error; it comes back, exits again, and waits between tries.
        if not init and exit_code is not None and (policy == "Always" or policy == "OnFailure" and exit_code):
            previous = {"state": "Terminated", "exitCode": exit_code, "detailStatus": "Completed" if not exit_code
                        else "Error"}  # fmt: skip
            return {"state": "Waiting", "detailStatus": "CrashLoopBackOff: Back-off restarting failed",
                    "previousState": previous}, 2  # fmt: skip
        if init or outcome == "Completed":
            return {"state": "Terminated", "exitCode": 0, "detailStatus": "Completed"}, 0
        if outcome == "Exited":
            return {"state": "Terminated", "exitCode": 1, "detailStatus": "Error"}, 0
        crashed = time.monotonic() > stored["started"] + self.delay + UNSTABLE_SECONDS
        if outcome == "Unstable" and crashed:  # docs: Running at Succeeded, then a crash loop (Praqma/...#25)
            return {"state": "Waiting", "detailStatus": "CrashLoopBackOff: Back-off restarting failed"}, 1
        if outcome == "Crashing":  # recordings: Succeeded while the container crash-loops happens
            return {"state": "Waiting", "detailStatus": "CrashLoopBackOff: Back-off restarting failed"}, 3
        return {"state": "Running", "startTime": _now(), "detailStatus": ""}, 0

    def logs(self, key: str, container: str, tail: int | None) -> tuple[int, dict]:
        if self.container_outcome(container) in ("Crashing", "Unstable", "Exited"):
            lines = [f"{container} {n}: connecting to the database at db.internal:5432" for n in range(1, 30)]
            lines.append(f"{container}: fatal: could not connect to the database after 29 attempts")
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


def add_what_azure_adds(body: dict, properties: dict) -> None:
    """recordings (FACTS, "What GET adds to what was PUT"): the defaults and empty lists a GET answers with."""
    body.setdefault("tags", {})
    properties["sku"] = "Standard"
    properties.setdefault("initContainers", [])
    for container in properties["containers"] + properties["initContainers"]:
        container["properties"].setdefault("environmentVariables", [])
    for container in properties["containers"]:
        container["properties"].setdefault("ports", [])
    for credential in properties.get("imageRegistryCredentials") or []:
        credential["isDelegatedIdentity"] = False
    for identity_id, identity in ((body.get("identity") or {}).get("userAssignedIdentities") or {}).items():
        identity.update(
            principalId=str(uuid.uuid5(uuid.NAMESPACE_URL, identity_id.lower())),
            clientId=str(uuid.uuid5(uuid.NAMESPACE_DNS, identity_id.lower())),
        )


def new_names(properties: dict) -> list[str]:
    return [c["name"] for c in properties.get("containers") or []]


def fixed(value, names: list[str]):
    return {name: value.get(name) for name in names} if isinstance(value, dict) else value


def check_shape(name: str, properties: dict) -> tuple[str, str] | None:
    containers, inits = properties.get("containers") or [], properties.get("initContainers") or []
    if not containers or not properties.get("osType"):  # spec: both are required
        return "InvalidRequestContent", "The request content was invalid: 'containers' and 'osType' are required."
    for container in containers + inits:  # spec: name and image are required; the texts are guesses
        if not container.get("name") or not (container.get("properties") or {}).get("image"):
            return "InvalidRequestContent", "Each container needs a name and an image."
    for container in containers:  # spec: resources are required on app containers
        if not container["properties"].get("resources", {}).get("requests"):
            return "InvalidRequestContent", f"Container '{container['name']}' has no resource requests."
    names = [c["name"] for c in containers + inits]
    if len(set(names)) < len(names):  # spec: containers are keyed by name; the code and text are a guess
        duplicate = next(n for n in names if names.count(n) > 1)
        return (
            "DuplicateContainerNames",
            f"Duplicate container names '{duplicate}' are found in container group '{name}'.",
        )
    for (
        container
    ) in inits:  # docs: init containers "can't use ports"; they get the group's resources (the code is a guess)
        if {"ports", "resources"} & container["properties"].keys():
            return "InvalidInitContainerProperties", (
                f"Init container '{container['name']}' in container group '{name}' cannot have ports or resources."
            )
    return check_volumes(name, properties, containers + inits)


def check_volumes(name: str, properties: dict, containers: list[dict]) -> tuple[str, str] | None:
    volumes = [volume.get("name", "") for volume in properties.get("volumes") or []]
    if len(set(volumes)) < len(volumes):  # docs: virtual-kubelet/azure-aci#303
        return "DuplicateVolumes", f"Duplicate volumes '{next(v for v in volumes if volumes.count(v) > 1)}' are found."
    mounts = {m.get("name") for c in containers for m in c["properties"].get("volumeMounts") or []}
    if mounts - set(volumes):  # spec: a mount names a declared volume; the code and text are a guess
        return "VolumeMountNotFound", f"Volume mounts '{', '.join(sorted(mounts - set(volumes)))}' name no volume."
    return None


def check_credentials(name: str, properties: dict) -> tuple[str, str] | None:
    credentials = properties.get("imageRegistryCredentials") or []
    if len(credentials) > len(properties.get("containers") or []):  # docs: docker/cli#3610; init containers not counted
        return "MoreImageRegistryCredentialsThanContainers", (
            f"More image registry credentials provided than containers in container group '{name}'."
        )
    for credential in credentials:
        if not credential.get("server"):  # spec: server is required; the text is a guess
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
    # docs: in a VNet, private IP only and no DNS name label; both codes and texts are guesses
    if ip_address.get("type") == "Private" and not subnets:
        return "PrivateIPAddressNotSupported", "A private IP address needs 'subnetIds'."
    if subnets and (ip_address.get("type") == "Public" or ip_address.get("dnsNameLabel")):
        return "PublicIPAddressNotSupported", "A container group in a subnet cannot have a public IP or DNS label."
    if ip_address and not ports:  # docs: hashicorp/terraform-provider-azurerm#1697
        return "MissingIpAddressPorts", f"The ports in the 'ipAddress' of container group '{name}' cannot be empty."
    if len(ports) > MAX_PORTS_PER_IP:  # docs give the limit; the code and message are a guess
        return "InvalidIpAddressPortCount", (
            f"The IP address of container group '{name}' has {len(ports)} ports; at most {MAX_PORTS_PER_IP} are allowed"
        )
    opened = [p["port"] for c in properties["containers"] for p in c["properties"].get("ports") or []]
    if len(set(opened)) < len(opened):  # docs: one port namespace per group; the code and text are a guess
        port = next(p for p in opened if opened.count(p) > 1)
        return "DuplicateContainerPorts", f"Port '{port}' is opened by more than one container in group '{name}'."
    unused = [str(port) for port in ports if port not in opened]
    if unused:  # docs: hashicorp/terraform-provider-azurerm PR #5091
        return "UnreferencedIpAddressPorts", (
            f"Following ports '{','.join(unused)}' in the 'ipAddress' are not used by any container in container "
            f"group '{name}'."
        )
    for subnet in subnets:  # docs: a malformed ID; text a guess
        if re.fullmatch(SUBNET_ID.pattern.split("/subnets/")[0], subnet.get("id", ""), re.IGNORECASE):
            # issues (FACTS, Round 4: Azure/azure-cli#26001): a virtual network's ID got a 500, not InvalidSubnetId
            return "InternalServerError", "Encountered internal server error. Diagnostic information: timestamp ..."
        if not SUBNET_ID.fullmatch(subnet.get("id", "")):
            return "InvalidSubnetId", f"The subnet ID '{subnet.get('id')}' is invalid."
    return None


def route_group(emulator: ContainerInstances, method: str, path: str, query: dict, raw: bytes) -> tuple:
    logs, group, restart = LOGS_PATH.fullmatch(path), GROUP_PATH.fullmatch(path), RESTART_PATH.fullmatch(path)
    match = logs or group or restart
    if not match:
        return 404, arm_error("InvalidResourceType", f"No route for {method} {path}."), {}
    key = path[: match.end("name")].lower()
    if emulator.provider_state != "Registered":  # docs: MissingSubscriptionRegistration, with details
        message = ("The subscription is not registered to use namespace 'Microsoft.ContainerInstance'. See "
                   "https://aka.ms/rps-not-found for how to register subscriptions.")  # fmt: skip
        body = {
            "error": {
                "code": "MissingSubscriptionRegistration",
                "message": message,
                "details": [
                    {
                        "code": "MissingSubscriptionRegistration",
                        "target": "Microsoft.ContainerInstance",
                        "message": message,
                    }
                ],
            }
        }
        return 409, body, {}
    if method == "PUT" and group:
        return put_route(emulator, path, group, query, raw)
    if method == "DELETE" and group:
        return emulator.delete_group(key)
    if key not in emulator.groups:
        message = f"The Resource 'Microsoft.ContainerInstance/containerGroups/{match['name']}' under resource "
        return 404, arm_error("ResourceNotFound", message + f"group '{match['rg']}' was not found."), {}
    if method == "POST" and restart:
        return emulator.restart_group(key, restart)
    if method == "GET" and logs:
        return (*emulator.logs(key, logs["container"], int(query.get("tail", ["0"])[0]) or None), {})
    if method == "GET":
        return 200, emulator.group_view(key), {}
    return 405, arm_error("MethodNotAllowed", f"{method} is not supported here."), {}


def put_route(emulator: ContainerInstances, path: str, group: re.Match, query: dict, raw: bytes) -> tuple:
    try:
        body = json.loads(raw)
    except ValueError:
        return 400, arm_error("InvalidRequestContent", "The request content was not valid JSON."), {}
    credentials = (body.get("properties") or {}).get("imageRegistryCredentials") or []
    if query.get("api-version", [""])[0] < IDENTITY_PULL_API_VERSION and any("identity" in c for c in credentials):
        # docs (SupportArticles-docs, acr-image-pull-failures-managed-identity.md): only identity credentials
        message = f"Identity in 'imageRegistryCredentials' of container group '{group['name']}' is not supported."
        return 400, arm_error("InvalidImageRegistryCredentialType", message), {}
    return emulator.put_group(path, group, body)
