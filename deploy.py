"""Deploy an Azure Container Instances group into a VNet subnet that pulls its image from a
private Azure Container Registry as a user-assigned managed identity: no registry password exists.

USAGE:
    python deploy.py [--env-file PATH] [--dry-run | --delete] [--timeout SECONDS] [-v]

    Settings come from environment variables or an env file (default .env); the real environment wins.

    Required to deploy:
    1) AZURE_TENANT_ID, AZURE_CLIENT_ID - the service principal that deploys
    2) AZURE_CLIENT_SECRET, or AZURE_CLIENT_CERTIFICATE_PATH (+ AZURE_CLIENT_CERTIFICATE_PASSWORD)
    3) AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_LOCATION - where the group goes (VNet's region)
    4) ACI_CONTAINER_GROUP_NAME - 1-63 lowercase letters, digits and single hyphens
    5) ACI_SUBNET_ID - subnet delegated to Microsoft.ContainerInstance/containerGroups
    6) ACI_IDENTITY_ID - user-assigned managed identity with AcrPull on the registry
    7) ACI_IMAGE - e.g. myregistry.azurecr.io/app:1.0

    Optional: ACI_CPU (1), ACI_MEMORY_GB (1.5), ACI_PORTS (80), ACI_COMMAND, ACI_RESTART_POLICY (Always),
    ACI_ENV_<NAME>, ACI_SECURE_ENV_<NAME>, ACI_INIT_IMAGE, ACI_INIT_COMMAND, ACI_DNS_SERVERS,
    AZURE_AUTHORITY_HOST, AZURE_RESOURCE_MANAGER_ENDPOINT.

EXIT CODES:
    0 done, 1 Azure rejected the request or the deployment failed, 2 configuration or usage error
    (nothing sent), 3 authentication or authorization failed, 4 gave up waiting, 130 interrupted.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import ipaddress
import json
import logging
import os
import re
import shlex
import sys
import time
from urllib.parse import urlsplit

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import AzureAuthorityHosts, CertificateCredential, ClientSecretCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import (
    Container,
    ContainerGroup,
    ContainerGroupIdentity,
    ContainerGroupSubnetId,
    ContainerPort,
    DnsConfiguration,
    EnvironmentVariable,
    ImageRegistryCredential,
    InitContainerDefinition,
    IpAddress,
    Port,
    ResourceRequests,
    ResourceRequirements,
    UserAssignedIdentities,
)
from azure.mgmt.core.tools import parse_resource_id
from dotenv import load_dotenv

PUBLIC_AUTHORITY = "https://" + AzureAuthorityHosts.AZURE_PUBLIC_CLOUD
PUBLIC_ARM = "https://management.azure.com"
# Azure Government's ARM token audience differs from its endpoint; every other cloud uses the endpoint.
ARM_AUDIENCES = {"https://management.usgovcloudapi.net": "https://management.core.usgovcloudapi.net"}
ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")
POLL_SECONDS = 2  # the SDK defaults to 30 s; ACI sends no Retry-After, so this is how soon we notice the end
PROGRESS_SECONDS = 5  # how often the group is read for new states and events while waiting
SECURE_PLACEHOLDER = "<secure value not shown>"

# A valid value for each setting, shown in every error about it (and mirrored in .env.example).
EXAMPLES = {
    "AZURE_TENANT_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_CLIENT_SECRET": "the secret from: az ad sp create-for-rbac",
    "AZURE_CLIENT_CERTIFICATE_PATH": "/path/to/sp-cert.pem",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD": "only for an encrypted certificate",
    "AZURE_SUBSCRIPTION_ID": "00000000-0000-0000-0000-000000000000",
    "AZURE_RESOURCE_GROUP": "rg-aci-private",
    "AZURE_LOCATION": "westeurope",
    "ACI_CONTAINER_GROUP_NAME": "aci-private-demo",
    "ACI_SUBNET_ID": "/subscriptions/<subscription-id>/resourceGroups/<group>"
    "/providers/Microsoft.Network/virtualNetworks/<vnet>/subnets/<subnet>",
    "ACI_IDENTITY_ID": "/subscriptions/<subscription-id>/resourceGroups/<group>"
    "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/<identity>",
    "ACI_IMAGE": "myregistry.azurecr.io/app:1.0",
    "ACI_CPU": "1",
    "ACI_MEMORY_GB": "1.5",
    "ACI_PORTS": "80,443",
    "ACI_COMMAND": "python -m http.server 80",
    "ACI_RESTART_POLICY": "Always, OnFailure or Never",
    "ACI_INIT_IMAGE": "myregistry.azurecr.io/migrate:1.0",
    "ACI_INIT_COMMAND": "python migrate.py",
    "ACI_DNS_SERVERS": "10.0.0.4,168.63.129.16",
    "AZURE_AUTHORITY_HOST": PUBLIC_AUTHORITY,
    "AZURE_RESOURCE_MANAGER_ENDPOINT": PUBLIC_ARM,
}
ENV_PREFIX, SECURE_ENV_PREFIX = "ACI_ENV_", "ACI_SECURE_ENV_"
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
GROUP_NAME = re.compile(r"(?!.*--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
TENANT = re.compile(r"[0-9a-zA-Z.-]+")
RESOURCE_GROUP = re.compile(r"[-\w.()]{0,89}[-\w()]")
LOCATION = re.compile(r"[A-Za-z0-9 ]+")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# host[:port]/path[:tag][@digest], as the Docker reference grammar has it; the host needs a dot or port.
IMAGE = re.compile(
    r"(?P<host>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?)/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


class ConfigError(Exception):
    """Every problem with the settings, each naming its variable."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclasses.dataclass(frozen=True)
class Config:
    subscription_id: str
    resource_group: str
    container_group_name: str
    location: str = ""
    subnet_id: str = ""
    identity_id: str = ""
    image: str = ""
    cpu: float = 1.0
    memory_in_gb: float = 1.5
    ports: tuple[int, ...] = (80,)
    command: tuple[str, ...] = ()
    restart_policy: str = "Always"
    environment: dict[str, str] = dataclasses.field(default_factory=dict)
    secure_environment: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    init_image: str = ""
    init_command: tuple[str, ...] = ()
    dns_servers: tuple[str, ...] = ()
    tenant_id: str = ""
    client_id: str = ""
    client_secret: str = dataclasses.field(default="", repr=False)
    certificate_path: str = ""
    certificate_password: str = dataclasses.field(default="", repr=False)
    authority_host: str = PUBLIC_AUTHORITY
    resource_manager_endpoint: str = PUBLIC_ARM


def registry_server(image: str) -> str:
    return image.split("/", 1)[0].lower()


def load_config(settings: dict[str, str], mode: str = "deploy") -> tuple[Config, list[str]]:
    """Validate the settings for mode ("deploy", "dry-run" or "delete"): a Config and warnings,
    or ConfigError with every problem at once. Reads nothing but settings (and a certificate path)."""
    problems: list[str] = []
    needs_deploy, needs_login = mode != "delete", mode != "dry-run"

    def get(name: str, required: bool = False, pattern: re.Pattern | None = None, what: str = "") -> str:
        value = (settings.get(name) or "").strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":  # pasted with its quotes
            value = value[1:-1].strip()
        if required and not value:
            problems.append(f"{name} is not set; for example {name}={EXAMPLES[name]}")
        elif value and pattern:
            check(name, pattern.fullmatch(value) is not None, what)
        return value

    def check(name: str, ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{name}={settings[name].strip()!r} is not {what}; for example {name}={EXAMPLES[name]}")

    def resource_id(name: str, resource_type: str) -> str:
        value = get(name, required=True)
        parts = parse_resource_id(value) if value else {}
        children = [parts[f"child_type_{n}"] for n in range(1, parts.get("last_child_num", 0) + 1)]
        found = "/".join(filter(None, [parts.get("namespace"), parts.get("type"), *children]))
        ok = found.lower() == resource_type.lower() and "resource_group" in parts
        if value:
            check(name, ok, f"a {resource_type} resource ID (it names {found or 'no resource type'})")
        return value

    def number(name: str, default: float) -> float:
        value = get(name)
        try:
            result = float(value) if value else default
        except ValueError:
            result = float("nan")
        check(name, 0 < result < float("inf"), "a positive number")
        return result

    def https_url(name: str, default: str) -> str:
        value = get(name).rstrip("/") or default
        parts = urlsplit(value)
        check(name, parts.scheme == "https" and bool(parts.hostname), "an https:// URL")
        return value

    def image(name: str, required: bool) -> str:
        value = get(name, required=required)
        host = registry_server(value)
        if value and not (IMAGE.fullmatch(value) and ("." in host or ":" in host or host == "localhost")):
            check(name, False, "a fully qualified image reference (registry host/repository:tag)")
        elif required and value and not host.endswith(ACR_SUFFIXES):
            check(name, False, "in an Azure Container Registry, which the identity pulls from")
        return value

    def command(name: str) -> tuple[str, ...]:
        try:
            return tuple(shlex.split(settings.get(name) or ""))
        except ValueError as error:
            problems.append(f"{name} cannot be split like a shell command line ({error}); for example {EXAMPLES[name]}")
            return ()

    subscription_id = get("AZURE_SUBSCRIPTION_ID", True, GUID, "a subscription ID (a GUID)")
    resource_group = get("AZURE_RESOURCE_GROUP", True, RESOURCE_GROUP, "a resource group name")
    name = get("ACI_CONTAINER_GROUP_NAME", True, GROUP_NAME, "a valid container group name")
    values: dict = {}

    if needs_login:
        values["tenant_id"] = get("AZURE_TENANT_ID", True, TENANT, "a tenant ID (a GUID or a domain)")
        values["client_id"] = get("AZURE_CLIENT_ID", True, GUID, "an application (client) ID")
        values["client_secret"] = get("AZURE_CLIENT_SECRET")
        values["certificate_path"] = get("AZURE_CLIENT_CERTIFICATE_PATH")
        values["certificate_password"] = get("AZURE_CLIENT_CERTIFICATE_PASSWORD")
        if not values["client_secret"] and not values["certificate_path"]:
            problems.append(
                "Neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH is set; for example "
                f"AZURE_CLIENT_SECRET=<{EXAMPLES['AZURE_CLIENT_SECRET']}>"
            )
        elif not values["client_secret"] and not os.access(values["certificate_path"], os.R_OK):
            problems.append(
                "AZURE_CLIENT_CERTIFICATE_PATH names no readable file; set it to a PEM or PKCS12 file with the "
                f"certificate and its private key, for example {EXAMPLES['AZURE_CLIENT_CERTIFICATE_PATH']}"
            )
        values["authority_host"] = https_url("AZURE_AUTHORITY_HOST", PUBLIC_AUTHORITY)
        values["resource_manager_endpoint"] = https_url("AZURE_RESOURCE_MANAGER_ENDPOINT", PUBLIC_ARM)

    if needs_deploy:
        location = get("AZURE_LOCATION", True, LOCATION, "an Azure region name")
        values["location"] = location.replace(" ", "").lower()
        values["subnet_id"] = resource_id("ACI_SUBNET_ID", "Microsoft.Network/virtualNetworks/subnets")
        subnet_subscription = parse_resource_id(values["subnet_id"]).get("subscription", "")
        if GUID.fullmatch(subscription_id) and subnet_subscription.lower() not in ("", subscription_id.lower()):
            problems.append(
                f"ACI_SUBNET_ID is in subscription {subnet_subscription}, but AZURE_SUBSCRIPTION_ID is "
                f"{subscription_id}; the container group and its subnet must be in the same subscription"
            )
        values["identity_id"] = resource_id("ACI_IDENTITY_ID", "Microsoft.ManagedIdentity/userAssignedIdentities")
        values["image"] = image("ACI_IMAGE", required=True)
        values["init_image"] = image("ACI_INIT_IMAGE", required=False)
        values["cpu"] = number("ACI_CPU", 1.0)
        values["memory_in_gb"] = number("ACI_MEMORY_GB", 1.5)
        ports = [port.strip() for port in get("ACI_PORTS").split(",") if port.strip()] or ["80"]
        ports_ok = all(port.isdigit() and 1 <= int(port) <= 65535 for port in ports)
        check("ACI_PORTS", ports_ok, "a comma-separated list of ports from 1 to 65535")
        values["ports"] = tuple(dict.fromkeys(int(port) for port in ports if port.isdigit()))
        values["command"] = command("ACI_COMMAND")
        values["init_command"] = command("ACI_INIT_COMMAND")
        if values["init_command"] and not values["init_image"]:
            problems.append(
                f"ACI_INIT_COMMAND is set without ACI_INIT_IMAGE; e.g. ACI_INIT_IMAGE={EXAMPLES['ACI_INIT_IMAGE']}"
            )
        policies = {policy.lower(): policy for policy in ("Always", "OnFailure", "Never")}
        restart_policy = get("ACI_RESTART_POLICY") or "Always"
        check("ACI_RESTART_POLICY", restart_policy.lower() in policies, "a restart policy")
        values["restart_policy"] = policies.get(restart_policy.lower(), restart_policy)
        dns_servers = tuple(server.strip() for server in get("ACI_DNS_SERVERS").split(",") if server.strip())
        for server in dns_servers:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                check("ACI_DNS_SERVERS", False, "a comma-separated list of IP addresses")
                break
        values["dns_servers"] = dns_servers
        for field, prefix in (("environment", ENV_PREFIX), ("secure_environment", SECURE_ENV_PREFIX)):
            values[field] = {key[len(prefix) :]: settings[key] for key in sorted(settings) if key.startswith(prefix)}
            for key in values[field]:
                if not ENV_NAME.fullmatch(key):
                    problems.append(
                        f"{prefix}{key}: {key!r} is not a valid environment variable name "
                        f"(letters, digits and underscores, not starting with a digit); for example {prefix}APP_MODE"
                    )
        for key in values["environment"].keys() & values["secure_environment"].keys():
            problems.append(f"{ENV_PREFIX}{key} and {SECURE_ENV_PREFIX}{key} are both set; keep one of them")

    if problems:
        raise ConfigError(problems)
    return Config(subscription_id, resource_group, name, **values), unknown_setting_warnings(settings)


def unknown_setting_warnings(settings: dict[str, str]) -> list[str]:
    """ACI_* names this script does not read are likely typos: name the closest known one."""
    known = [name for name in EXAMPLES if name.startswith("ACI_")] + [
        ENV_PREFIX + "<NAME>",
        SECURE_ENV_PREFIX + "<NAME>",
    ]
    warnings = []
    for key in sorted(settings):
        if key.startswith("ACI_") and key not in EXAMPLES and not key.startswith((ENV_PREFIX, SECURE_ENV_PREFIX)):
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
            guess = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{key} is not a setting deploy.py reads, so it is ignored{guess}")
    return warnings


# [START build_container_group]
def build_container_group(config: Config) -> ContainerGroup:
    """The request body: a Linux group in the subnet, private IP only, pulling as the identity."""
    environment_variables = [EnvironmentVariable(name=k, value=v) for k, v in config.environment.items()] + [
        EnvironmentVariable(name=k, secure_value=v) for k, v in config.secure_environment.items()
    ]
    container = Container(
        name=config.container_group_name,
        image=config.image,
        command=list(config.command) or None,
        ports=[ContainerPort(port=port, protocol="TCP") for port in config.ports],
        environment_variables=environment_variables,
        resources=ResourceRequirements(requests=ResourceRequests(cpu=config.cpu, memory_in_gb=config.memory_in_gb)),
    )
    # An init container runs to completion first; the group's registry credentials apply to it too.
    init_containers = (
        [InitContainerDefinition(name="init", image=config.init_image, command=list(config.init_command) or None)]
        if config.init_image
        else None
    )
    # The same identity is attached to the group and named as the registry credential, so ACI pulls
    # with an Entra token for that identity: no admin user and no registry password exist anywhere.
    images = (config.image, config.init_image)
    registry_servers = sorted(
        {registry_server(image) for image in images if registry_server(image).endswith(ACR_SUFFIXES)}
    )
    return ContainerGroup(
        location=config.location,
        os_type="Linux",
        containers=[container],
        init_containers=init_containers,
        restart_policy=config.restart_policy,
        identity=ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={config.identity_id: UserAssignedIdentities()}
        ),
        image_registry_credentials=[
            ImageRegistryCredential(server=server, identity=config.identity_id) for server in registry_servers
        ],
        # In a subnet the group gets a private IP only: no public IP and no DNS name label.
        subnet_ids=[ContainerGroupSubnetId(id=config.subnet_id)],
        ip_address=IpAddress(
            type="Private",
            ports=[Port(port=port, protocol="TCP") for port in config.ports],
            auto_generated_domain_name_label_scope=None,
        ),
        # Containers do not inherit the VNet's DNS servers; name them to resolve private names.
        dns_config=DnsConfiguration(name_servers=list(config.dns_servers)) if config.dns_servers else None,
    )


# [END build_container_group]


def create_client(config: Config) -> ContainerInstanceManagementClient:
    """An ARM client signed in as the service principal, for any cloud or test endpoint."""
    microsoft_clouds = (
        AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        AzureAuthorityHosts.AZURE_CHINA,
        AzureAuthorityHosts.AZURE_GOVERNMENT,
    )
    microsoft_cloud = urlsplit(config.authority_host).hostname in microsoft_clouds
    # Any other authority (Azure Stack, a test endpoint) must not send MSAL to login.microsoftonline.com first.
    options = {"authority": config.authority_host, "disable_instance_discovery": not microsoft_cloud}
    if config.client_secret:
        credential = ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret, **options)
    else:
        credential = CertificateCredential(
            config.tenant_id,
            config.client_id,
            certificate_path=config.certificate_path,
            password=config.certificate_password or None,
            **options,
        )
    audience = ARM_AUDIENCES.get(config.resource_manager_endpoint, config.resource_manager_endpoint)
    return ContainerInstanceManagementClient(
        credential,
        config.subscription_id,
        base_url=config.resource_manager_endpoint,
        credential_scopes=[audience + "/.default"],
        polling_interval=POLL_SECONDS,
    )


class WaitTimeout(Exception):
    """--timeout passed before Azure reported the outcome; the deployment goes on in Azure."""


class DeploymentFailed(Exception):
    """Azure accepted the group, then provisioning failed; warning_events say why."""

    def __init__(self, error: HttpResponseError, warning_events: list[str]):
        super().__init__(str(error))
        self.error, self.warning_events = error, warning_events


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def instance_views(group: ContainerGroup) -> list:
    containers = (group.init_containers or []) + (group.containers or [])
    views = [("group", group.instance_view)] + [(container.name, container.instance_view) for container in containers]
    return [(owner, view) for owner, view in views if view is not None]


def progress_lines(group: ContainerGroup, shown: dict) -> list[str]:
    """Lines for states that changed and events not shown yet; shown remembers what was printed."""
    lines = {("provisioning",): f"provisioning: {group.provisioning_state}"}
    for owner, view in instance_views(group):
        current = getattr(view, "current_state", None)  # containers have a current_state, the group a state
        state = current.state if current else getattr(view, "state", None)
        if state:
            detail = f" ({current.detail_status})" if current and current.detail_status else ""
            lines[(owner, "state")] = f"{owner}: {state}{detail}"
        for event in view.events or []:
            key = (owner, event.name, event.message, event.first_timestamp)
            lines[key] = f"{owner}: {event.type} event {event.name}: {event.message}"
    new = [line for key, line in lines.items() if shown.get(key) != line]
    shown.update(lines)
    return new


def deploy(client: ContainerInstanceManagementClient, config: Config, timeout: float) -> ContainerGroup:
    """PUT the group, then wait for Azure's verdict, showing states and events as they come."""
    deadline = time.monotonic() + timeout
    name, resource_group = config.container_group_name, config.resource_group
    say(f"Deploying container group {name} in resource group {resource_group} ({config.location}) ...")
    poller = client.container_groups.begin_create_or_update(resource_group, name, build_container_group(config))
    shown: dict = {}
    while True:
        try:
            poller.wait(max(0.0, min(PROGRESS_SECONDS, deadline - time.monotonic())))
            if poller.done():
                return poller.result()
        except HttpResponseError as error:  # failed after Azure accepted it: the Warning events say why
            group = client.container_groups.get(resource_group, name)
            events = [
                f"{owner}: {event.name}: {event.message}"
                for owner, view in instance_views(group)
                for event in view.events or []
                if event.type == "Warning"
            ]
            raise DeploymentFailed(error, events) from error
        if time.monotonic() >= deadline:
            raise WaitTimeout
        for line in progress_lines(client.container_groups.get(resource_group, name), shown):
            say("  " + line)


def summary(group: ContainerGroup) -> tuple[str, list[str]]:
    """The result for stdout, and warnings for containers that are not running."""
    view, ip = group.instance_view, group.ip_address
    ports = ", ".join(f"{port.port}/{port.protocol or 'TCP'}" for port in ip.ports or []) if ip else ""
    lines = [
        f"container group:    {group.name}",
        f"provisioning state: {group.provisioning_state}",
        f"group state:        {view.state if view else 'unknown'}",
        f"private IP:         {ip.ip if ip and ip.ip else 'not assigned'} ({ports})",
    ]
    warnings = []
    for kind, containers in (("init container", group.init_containers or []), ("container", group.containers)):
        for container in containers:
            current = container.instance_view.current_state if container.instance_view else None
            state = current.state if current else "unknown"
            restarts = container.instance_view.restart_count if container.instance_view else 0
            exit_code = f", exit code {current.exit_code}" if current and current.exit_code is not None else ""
            lines.append(f"{kind} {container.name}: {state}{exit_code}, restarts {restarts or 0}")
            run_once = kind == "init container" or group.restart_policy != "Always"
            finished = run_once and state == "Terminated" and current.exit_code == 0
            if state != "Running" and not finished:
                detail = f" ({current.detail_status})" if current and current.detail_status else ""
                warnings.append(f"provisioning succeeded, but {kind} {container.name} is {state}{detail}, not running")
    return "\n".join(lines), warnings


def delete(client: ContainerInstanceManagementClient, config: Config, timeout: float) -> bool:
    """Delete the group and wait; False when there was no such group."""
    try:
        client.container_groups.get(config.resource_group, config.container_group_name)
    except ResourceNotFoundError:
        return False
    say(f"Deleting container group {config.container_group_name} in resource group {config.resource_group} ...")
    poller = client.container_groups.begin_delete(config.resource_group, config.container_group_name)
    poller.wait(timeout)
    if not poller.done():
        raise WaitTimeout
    poller.result()
    return True


# What to check for the errors this setup meets: the first pattern found in the Azure or Entra ID error.
HINTS = {
    "InaccessibleImage|Failed to pull image": "check that the image exists in the registry, that ACI_IDENTITY_ID "
    "has AcrPull on the registry (a new role assignment can take minutes to apply), and that the registry "
    "allows trusted Microsoft services: az acr update --name <registry> --allow-trusted-services true",
    "InvalidImageRegistryIdentity": "the registry credential must name a user-assigned identity attached to the "
    "group; check ACI_IDENTITY_ID: az identity show -g <group> -n <identity> --query id -o tsv",
    "Ambiguous": "a registry credential must have an identity and no username or password",
    "LinkedAuthorizationFailed": "the service principal also needs Microsoft.Network/virtualNetworks/subnets/"
    "join/action on the subnet (Network Contributor) and Managed Identity Operator on the identity",
    "AuthorizationFailed": "the service principal needs a role that allows Microsoft.ContainerInstance/"
    "containerGroups/write on the resource group, e.g. az role assignment create --assignee <AZURE_CLIENT_ID> "
    "--role Contributor --scope <resource group ID>",
    "SubnetMissingRequiredDelegation": "delegate the subnet to container groups: az network vnet subnet update "
    "--ids <ACI_SUBNET_ID> --delegations Microsoft.ContainerInstance/containerGroups",
    "InvalidSubnetId": "ACI_SUBNET_ID must be an existing subnet: az network vnet subnet show -g <group> "
    "--vnet-name <vnet> -n <subnet> --query id -o tsv",
    "LinkedInvalidPropertyId": "ACI_SUBNET_ID and ACI_IDENTITY_ID must be IDs of existing resources; copy them "
    "with az ... --query id -o tsv",
    "MissingSubscriptionRegistration": "register the provider, then run again once it shows Registered: "
    "az provider register --namespace Microsoft.ContainerInstance",
    "ServiceAssociationLinkNotReady": "another deployment into this subnet is still in progress; wait a minute "
    "and run again (one deployment per subnet at a time)",
    "ContainerGroupTransitioning": "the group is still changing from an earlier request; wait a minute and run again",
    "ServiceUnavailable": "the region has no capacity for this request now; run again later, ask for less CPU or "
    "memory, or use another region (with a VNet there)",
    "ResourceGroupNotFound": "create the resource group or fix AZURE_RESOURCE_GROUP: "
    "az group create -n <group> -l <region>",
    "InvalidAuthenticationToken": "the token is not for this ARM endpoint; check AZURE_RESOURCE_MANAGER_ENDPOINT "
    "and AZURE_TENANT_ID (the subscription's tenant)",
    "AADSTS7000215": "AZURE_CLIENT_SECRET is wrong or expired; make a new one: "
    "az ad sp credential reset --id <AZURE_CLIENT_ID>",
    "AADSTS700027": "the certificate is not registered on the app; add it: "
    "az ad app credential reset --id <AZURE_CLIENT_ID> --cert @<certificate.pem> --append",
    "AADSTS700016": "AZURE_CLIENT_ID is not an application in tenant AZURE_TENANT_ID; check both: "
    "az ad sp show --id <AZURE_CLIENT_ID>",
    "AADSTS90002|Unable to get authority configuration": "tenant AZURE_TENANT_ID does not exist; look it up: "
    "az account show --query tenantId -o tsv",
}


def hint_for(text: str) -> str:
    return next((hint for pattern, hint in HINTS.items() if re.search(pattern, text)), "")


def report_error(error: HttpResponseError, events: list[str] = ()) -> None:
    """The Azure error code and message (Entra ID's AADSTS code is in the message), events, and a hint."""
    code = error.error.code if error.error and error.error.code else ""
    message = error.error.message if error.error and error.error.message else error.message
    say(f"error: {code}: {message}" if code else f"error: {message}")
    for event in events:
        say(f"  {event}")
    hint = hint_for("\n".join([code, message or "", *events]))
    if hint:
        say(f"hint: {hint}")


def still_running_guidance(config: Config, env_file: str | None, what: str) -> None:
    group = f"-g {config.resource_group} -n {config.container_group_name}"
    env_option = f" --env-file {env_file}" if env_file else ""
    say(f"The {what} goes on in Azure. Check it:")
    say(f'  az container show {group} --query "{{provisioning: provisioningState, state: instanceView.state}}"')
    say(f"Delete it:\n  python deploy.py --delete{env_option}   (or: az container delete {group} --yes)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-file", help="settings file (default: .env, if present)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the request body; send nothing")
    mode.add_argument("--delete", action="store_true", help="delete the container group and wait")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the outcome (1800)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr (never a secret)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds, for example --timeout 600")
    if args.env_file and not os.path.isfile(args.env_file):
        parser.error(f"--env-file {args.env_file}: no such file")
    load_dotenv(args.env_file or ".env", override=False)  # the real environment wins
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    # Azure's INFO logs redact headers and omit bodies; never set logging_enable, which logs both.
    logging.getLogger("azure").setLevel(logging.INFO if args.verbose else logging.ERROR)

    try:
        config, warnings = load_config(
            dict(os.environ), "dry-run" if args.dry_run else "delete" if args.delete else "deploy"
        )
    except ConfigError as error:
        say("error: the settings need fixing (nothing was sent to Azure):")
        for problem in error.problems:
            say(f"  {problem}")
        return 2
    for warning in warnings:
        say(f"warning: {warning}")
    if args.verbose:
        say(f"settings: {config}")

    if args.dry_run:
        masked = dataclasses.replace(
            config, secure_environment=dict.fromkeys(config.secure_environment, SECURE_PLACEHOLDER)
        )
        print(json.dumps(build_container_group(masked).serialize(), indent=2))
        say(f"dry run: this is the body of PUT .../containerGroups/{config.container_group_name}; nothing was sent")
        return 0
    try:
        client = create_client(config)
    except ValueError as error:  # a certificate that cannot be loaded (wrong password, no private key)
        say(f"error: AZURE_CLIENT_CERTIFICATE_PATH cannot be used: {error} (nothing was sent to Azure)")
        return 2
    what = "deletion" if args.delete else "deployment"
    try:
        if args.delete:
            deleted = delete(client, config, args.timeout)
            outcome = "deleted" if deleted else "does not exist, nothing to delete"
            print(f"container group {config.container_group_name}: {outcome}")
            return 0
        text, warnings = summary(deploy(client, config, args.timeout))
        print(text)
        logs = f"az container logs -g {config.resource_group} -n {config.container_group_name}"
        for warning in warnings:
            say(f"warning: {warning}; see its logs: {logs}")
        return 0
    except WaitTimeout:
        say(f"error: gave up waiting after {args.timeout:g} s (--timeout).")
        still_running_guidance(config, args.env_file, what)
        return 4
    except KeyboardInterrupt:
        say("interrupted.")
        still_running_guidance(config, args.env_file, what)
        return 130
    except ClientAuthenticationError as error:
        report_error(error)
        return 3
    except DeploymentFailed as failure:
        report_error(failure.error, failure.warning_events)
        return 1
    except HttpResponseError as error:
        report_error(error)
        return 3 if error.status_code == 403 else 1
    except (ServiceRequestError, ServiceResponseError) as error:  # after azure-core's retries
        say(f"error: could not reach Azure ({error.message}); check the network, proxy and endpoints")
        return 1


if __name__ == "__main__":
    sys.exit(main())
