# SPDX-License-Identifier: MIT
"""Deploy an Azure Container Instances group into a virtual network subnet that pulls its image from a
private Azure Container Registry as a user-assigned managed identity: no registry password exists.

USAGE:
    python deploy.py [--env-file PATH] [--dry-run | --delete | --recreate] [--timeout SECONDS] [-v]

    The top half of this file is the sample to copy, between [START sample] and [END sample]: a
    Settings object, create_client, build_container_group, create_or_update and delete. It prints
    nothing and reads no environment. The bottom half is this command line. README.md explains the
    prerequisites: the registry, the identity, the subnet and the service principal, as az commands.

    Settings come from environment variables or an env file (default .env); the real environment wins.

    Required to deploy:
    1) AZURE_TENANT_ID, AZURE_CLIENT_ID - the service principal that deploys
    2) AZURE_CLIENT_SECRET, or AZURE_CLIENT_CERTIFICATE_PATH (+ AZURE_CLIENT_CERTIFICATE_PASSWORD)
    3) AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_LOCATION - where the group goes (VNet's region)
    4) ACI_CONTAINER_GROUP_NAME - 1-63 lowercase letters, digits and single hyphens
    5) ACI_SUBNET_ID - subnet delegated to Microsoft.ContainerInstance/containerGroups
    6) ACI_IDENTITY_ID - user-assigned managed identity with AcrPull on the registry
    7) ACI_IMAGE - e.g. myregistry.azurecr.io/app:1.0

    Optional: ACI_CPU (1), ACI_MEMORY_GB (1.5), ACI_PORTS (80, at most 5), ACI_COMMAND,
    ACI_RESTART_POLICY (Always), ACI_ENV_<NAME>, ACI_SECURE_ENV_<NAME>, ACI_INIT_IMAGE, ACI_INIT_COMMAND,
    ACI_DNS_SERVERS, AZURE_AUTHORITY_HOST, AZURE_RESOURCE_MANAGER_ENDPOINT.

EXIT CODES:
    0 done, 1 Azure rejected the request, the deployment failed or a container is not running,
    2 configuration or usage error (nothing sent), 3 authentication or authorization failed,
    4 gave up waiting (--timeout), 130 interrupted (Ctrl-C).
"""

# [START sample]
import dataclasses
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from azure.core import AzureClouds
from azure.core.exceptions import ResourceNotFoundError
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
from azure.mgmt.core.tools import get_arm_endpoints

ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")
POLL_SECONDS = 2  # the SDK defaults to 30 s; ACI sends no Retry-After, so this is how soon we notice the end
PROGRESS_SECONDS = 5  # how often the wait reads the group for new states and events


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the group goes, what it runs and who deploys it. Secrets stay out of repr()."""

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
    authority_host: str = "https://" + AzureAuthorityHosts.AZURE_PUBLIC_CLOUD
    resource_manager_endpoint: str = "https://management.azure.com"


# [START create_client]
def create_client(settings: Settings) -> ContainerInstanceManagementClient:
    """An ARM client signed in as the service principal, for any Azure cloud or a private endpoint."""
    microsoft_clouds = (
        AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
        AzureAuthorityHosts.AZURE_CHINA,
        AzureAuthorityHosts.AZURE_GOVERNMENT,
    )
    # Any other authority (Azure Stack Hub, a test endpoint) must not send MSAL to login.microsoftonline.com.
    options = {
        "authority": settings.authority_host,
        "disable_instance_discovery": urlsplit(settings.authority_host).hostname not in microsoft_clouds,
    }
    if settings.client_secret:
        credential = ClientSecretCredential(settings.tenant_id, settings.client_id, settings.client_secret, **options)
    else:
        credential = CertificateCredential(
            settings.tenant_id,
            settings.client_id,
            certificate_path=settings.certificate_path,
            password=settings.certificate_password or None,
            **options,
        )
    # The token audience of a known cloud comes from the SDK (Azure Government's is not its endpoint).
    endpoint = settings.resource_manager_endpoint.rstrip("/")
    clouds = [get_arm_endpoints(cloud) for cloud in AzureClouds]
    scopes = next((c["credential_scopes"] for c in clouds if c["resource_manager"].rstrip("/") == endpoint), None)
    return ContainerInstanceManagementClient(
        credential,
        settings.subscription_id,
        base_url=endpoint,
        credential_scopes=scopes or [endpoint + "/.default"],
        polling_interval=POLL_SECONDS,
    )


# [END create_client]


# [START build_container_group]
def build_container_group(settings: Settings) -> ContainerGroup:
    """The request body: a Linux group in the subnet, private IP only, pulling as the identity."""
    environment_variables = [EnvironmentVariable(name=k, value=v) for k, v in settings.environment.items()] + [
        EnvironmentVariable(name=k, secure_value=v) for k, v in settings.secure_environment.items()
    ]
    container = Container(
        name=settings.container_group_name,
        image=settings.image,
        command=list(settings.command) or None,
        ports=[ContainerPort(port=port, protocol="TCP") for port in settings.ports],
        environment_variables=environment_variables,
        resources=ResourceRequirements(requests=ResourceRequests(cpu=settings.cpu, memory_in_gb=settings.memory_in_gb)),
    )
    # An init container runs to completion first; the group's registry credentials apply to it too.
    init_containers = [
        InitContainerDefinition(name="init", image=settings.init_image, command=list(settings.init_command) or None)
    ]
    # The same identity is attached to the group and named as the registry credential, so ACI pulls
    # with an Entra token for that identity: no admin user and no registry password exist anywhere.
    servers = {image.split("/", 1)[0].lower() for image in (settings.image, settings.init_image) if image}
    return ContainerGroup(
        location=settings.location,
        os_type="Linux",
        containers=[container],
        init_containers=init_containers if settings.init_image else None,
        restart_policy=settings.restart_policy,
        identity=ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={settings.identity_id: UserAssignedIdentities()}
        ),
        image_registry_credentials=[
            ImageRegistryCredential(server=server, identity=settings.identity_id)
            for server in sorted(servers)
            if server.endswith(ACR_SUFFIXES)
        ],
        # In a subnet the group gets a private IP only: no public IP and no DNS name label.
        subnet_ids=[ContainerGroupSubnetId(id=settings.subnet_id)],
        ip_address=IpAddress(
            type="Private",
            ports=[Port(port=port, protocol="TCP") for port in settings.ports],
            auto_generated_domain_name_label_scope=None,
        ),
        # Containers do not inherit the VNet's DNS servers; name them to resolve private names.
        dns_config=DnsConfiguration(name_servers=list(settings.dns_servers)) if settings.dns_servers else None,
    )


# [END build_container_group]


# [START create_or_update]
def create_or_update(
    client: ContainerInstanceManagementClient,
    settings: Settings,
    timeout: float = 1800,
    on_progress: Callable[[ContainerGroup], None] | None = None,
) -> ContainerGroup:
    """PUT the group and wait for Azure's verdict; on_progress sees the group every few seconds.

    Raises the SDK's HttpResponseError when Azure refuses the group or provisioning fails, and
    TimeoutError after timeout seconds (the deployment goes on in Azure)."""
    deadline = time.monotonic() + timeout
    group, name = settings.resource_group, settings.container_group_name
    poller = client.container_groups.begin_create_or_update(group, name, build_container_group(settings))
    while True:
        poller.wait(max(0.0, min(PROGRESS_SECONDS, deadline - time.monotonic())))
        if poller.done():
            return poller.result()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"container group {name} is not provisioned after {timeout:g} s")
        if on_progress:
            on_progress(client.container_groups.get(group, name))


# [END create_or_update]


# [START delete]
def delete(
    client: ContainerInstanceManagementClient,
    settings: Settings,
    timeout: float = 1800,
    on_progress: Callable[[ContainerGroup], None] | None = None,
) -> bool:
    """Delete the group and wait until it is gone; False when there was no such group.

    on_progress sees the group found, before it is deleted. Raises TimeoutError after timeout seconds."""
    group, name = settings.resource_group, settings.container_group_name
    try:
        existing = client.container_groups.get(group, name)
    except ResourceNotFoundError:
        return False
    if on_progress:
        on_progress(existing)
    poller = client.container_groups.begin_delete(group, name)
    poller.wait(timeout)
    if not poller.done():
        raise TimeoutError(f"container group {name} is not deleted after {timeout:g} s")
    poller.result()
    return True


# [END delete]
# [END sample]


# ======================================================================================================
# The command line. Everything below runs the sample above with settings from the environment or an
# env file: it checks them, shows progress, explains errors and maps every outcome to an exit code.
# ======================================================================================================
import argparse
import difflib
import ipaddress
import json
import logging
import os
import re
import shlex
import sys

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.core.tools import parse_resource_id
from dotenv import load_dotenv

SECURE_PLACEHOLDER = "<secure value not shown>"
ENV_PREFIX, SECURE_ENV_PREFIX = "ACI_ENV_", "ACI_SECURE_ENV_"
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# host[:port]/path[:tag][@digest], as the Docker reference grammar has it; the host needs a dot or port.
IMAGE = re.compile(
    r"(?P<host>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?)/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)


class UsageError(Exception):
    """A problem with the command line or its files; nothing was sent to Azure."""


class SettingsError(UsageError):
    """Every problem with the settings, each naming its variable."""

    def __init__(self, problems: list[str]):
        super().__init__("the settings need fixing (nothing was sent to Azure):\n  " + "\n  ".join(problems))
        self.problems = problems


# Checks: each turns a setting's text into its Settings value, or raises ValueError saying what it must be.
def matching(pattern: str, what: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not re.fullmatch(pattern, value):
            raise ValueError(what)
        return value

    return check


def resource_id(resource_type: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        parts = parse_resource_id(value)
        children = [parts[f"child_type_{n}"] for n in range(1, parts.get("last_child_num", 0) + 1)]
        found = "/".join(filter(None, [parts.get("namespace"), parts.get("type"), *children]))
        if found.lower() != resource_type.lower() or "resource_group" not in parts:
            raise ValueError(f"a {resource_type} resource ID (it names {found or 'no resource type'})")
        return value

    return check


def image_reference(value: str) -> str:
    host = value.split("/", 1)[0]
    if not (IMAGE.fullmatch(value) and ("." in host or ":" in host or host == "localhost")):
        raise ValueError("a fully qualified image reference (registry host/repository:tag)")
    return value


def registry_image(value: str) -> str:
    if not image_reference(value).split("/", 1)[0].lower().endswith(ACR_SUFFIXES):
        raise ValueError("in an Azure Container Registry, which the identity pulls from")
    return value


def positive_number(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = float("nan")
    if not 0 < number < float("inf"):
        raise ValueError("a positive number")
    return number


def port_list(value: str) -> tuple[int, ...]:
    ports = [port.strip() for port in value.split(",") if port.strip()]
    if not all(port.isdigit() and 1 <= int(port) <= 65535 for port in ports):
        raise ValueError("a comma-separated list of ports from 1 to 65535")
    return tuple(dict.fromkeys(int(port) for port in ports)) or (80,)


def command_line(value: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(value))
    except ValueError as error:
        raise ValueError(f"a shell command line ({error})") from None


def restart_policy(value: str) -> str:
    policies = {policy.lower(): policy for policy in ("Always", "OnFailure", "Never")}
    if value.lower() not in policies:
        raise ValueError("a restart policy: Always, OnFailure or Never")
    return policies[value.lower()]


def ip_list(value: str) -> tuple[str, ...]:
    servers = tuple(server.strip() for server in value.split(",") if server.strip())
    try:
        for server in servers:
            ipaddress.ip_address(server)
    except ValueError:
        raise ValueError("a comma-separated list of IP addresses") from None
    return servers


def https_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme != "https" or not parts.hostname:
        raise ValueError("an https:// URL")
    return value.rstrip("/")


def text(value: str) -> str:
    return value


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    field: str  # the Settings field it sets
    example: str  # a valid value: shown in errors about it, and the value .env.example gives
    check: Callable[[str], object]  # text -> the field's value; ValueError says what it must be
    scope: str = "deploy"  # used to "deploy" (and dry-run), to "login" (deploy and delete), or by "all"
    required: bool = False


ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EXAMPLE_GROUP_ID = f"/subscriptions/{ZERO_GUID}/resourceGroups/rg-aci-private/providers"
SETTINGS = (
    Setting("AZURE_TENANT_ID", "tenant_id", ZERO_GUID,
            matching(r"[0-9a-zA-Z.-]+", "a tenant ID (a GUID or a domain)"), "login", True),
    Setting("AZURE_CLIENT_ID", "client_id", ZERO_GUID,
            matching(GUID.pattern, "an application (client) ID"), "login", True),
    Setting("AZURE_CLIENT_SECRET", "client_secret", "the secret from: az ad sp create-for-rbac", text, "login"),
    Setting("AZURE_CLIENT_CERTIFICATE_PATH", "certificate_path", "/path/to/sp-cert.pem", text, "login"),
    Setting("AZURE_CLIENT_CERTIFICATE_PASSWORD", "certificate_password", "only for an encrypted certificate",
            text, "login"),
    Setting("AZURE_SUBSCRIPTION_ID", "subscription_id", ZERO_GUID,
            matching(GUID.pattern, "a subscription ID (a GUID)"), "all", True),
    Setting("AZURE_RESOURCE_GROUP", "resource_group", "rg-aci-private",
            matching(r"[-\w.()]{0,89}[-\w()]", "a resource group name"), "all", True),
    Setting("AZURE_LOCATION", "location", "westeurope",
            lambda v: matching(r"[A-Za-z0-9 ]+", "an Azure region name")(v).replace(" ", "").lower(), required=True),
    Setting("ACI_CONTAINER_GROUP_NAME", "container_group_name", "aci-private-demo",
            matching(r"(?!.*--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a valid container group name"), "all", True),
    Setting("ACI_SUBNET_ID", "subnet_id",
            f"{EXAMPLE_GROUP_ID}/Microsoft.Network/virtualNetworks/vnet-aci/subnets/snet-aci",
            resource_id("Microsoft.Network/virtualNetworks/subnets"), required=True),
    Setting("ACI_IDENTITY_ID", "identity_id",
            f"{EXAMPLE_GROUP_ID}/Microsoft.ManagedIdentity/userAssignedIdentities/id-aci-acrpull",
            resource_id("Microsoft.ManagedIdentity/userAssignedIdentities"), required=True),
    Setting("ACI_IMAGE", "image", "acrprivatedemo.azurecr.io/aci-helloworld:latest", registry_image, required=True),
    Setting("ACI_CPU", "cpu", "1", positive_number),
    Setting("ACI_MEMORY_GB", "memory_in_gb", "1.5", positive_number),
    Setting("ACI_PORTS", "ports", "80", port_list),
    Setting("ACI_COMMAND", "command", "python -m http.server 80", command_line),
    Setting("ACI_RESTART_POLICY", "restart_policy", "Always", restart_policy),
    Setting("ACI_INIT_IMAGE", "init_image", "acrprivatedemo.azurecr.io/migrate:1.0", image_reference),
    Setting("ACI_INIT_COMMAND", "init_command", "python migrate.py", command_line),
    Setting("ACI_DNS_SERVERS", "dns_servers", "10.0.2.4", ip_list),
    Setting("AZURE_AUTHORITY_HOST", "authority_host", "https://login.microsoftonline.com", https_url, "login"),
    Setting("AZURE_RESOURCE_MANAGER_ENDPOINT", "resource_manager_endpoint", "https://management.azure.com",
            https_url, "login"),
)  # fmt: skip
SCOPES = {"deploy": {"all", "deploy", "login"}, "dry-run": {"all", "deploy"}, "delete": {"all", "login"}}


def clean(value: str | None) -> str:
    """Whitespace and one pair of quotes pasted around a value are not part of it."""
    value = (value or "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def load_settings(variables: dict[str, str], mode: str = "deploy") -> tuple[Settings, list[str]]:
    """Settings for mode ("deploy", "dry-run" or "delete") and warnings, or SettingsError naming every
    problem at once. Reads nothing but the variables given (and whether a certificate file is readable)."""
    problems: list[str] = []
    values: dict = {}
    for setting in (s for s in SETTINGS if s.scope in SCOPES[mode]):
        value = clean(variables.get(setting.name))
        if not value:
            if setting.required:
                problems.append(f"{setting.name} is not set; for example {setting.name}={setting.example}")
            continue
        try:
            values[setting.field] = setting.check(value)
        except ValueError as error:
            problems.append(f"{setting.name}={value!r} is not {error}; for example {setting.name}={setting.example}")
    if mode != "delete":
        values.update(environment_settings(variables, problems))
    problems += cross_check(values, mode)
    if problems:
        raise SettingsError(problems)
    return Settings(**values), unknown_setting_warnings(variables)


def environment_settings(variables: dict[str, str], problems: list[str]) -> dict[str, dict[str, str]]:
    """ACI_ENV_<NAME> and ACI_SECURE_ENV_<NAME>: the container's environment, plain and secure."""
    found = {}
    for field, prefix in (("environment", ENV_PREFIX), ("secure_environment", SECURE_ENV_PREFIX)):
        found[field] = {key[len(prefix) :]: variables[key] for key in sorted(variables) if key.startswith(prefix)}
        for key in found[field]:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                problems.append(
                    f"{prefix}{key}: {key!r} is not a valid environment variable name "
                    f"(letters, digits and underscores, not starting with a digit); for example {prefix}APP_MODE"
                )
    for key in sorted(found["environment"].keys() & found["secure_environment"].keys()):
        problems.append(f"{ENV_PREFIX}{key} and {SECURE_ENV_PREFIX}{key} are both set; keep one of them")
    return found


def cross_check(values: dict, mode: str) -> list[str]:
    """The rules that involve more than one setting."""
    problems = []
    example = {setting.name: setting.example for setting in SETTINGS}
    if mode != "dry-run" and not values.get("client_secret"):
        if not values.get("certificate_path"):
            problems.append(
                "Neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH is set; for example "
                f"AZURE_CLIENT_SECRET=<{example['AZURE_CLIENT_SECRET']}>"
            )
        elif not os.access(values["certificate_path"], os.R_OK):
            problems.append(
                "AZURE_CLIENT_CERTIFICATE_PATH names no readable file; set it to a PEM or PKCS12 file with the "
                f"certificate and its private key, for example {example['AZURE_CLIENT_CERTIFICATE_PATH']}"
            )
    subnet_subscription = parse_resource_id(values.get("subnet_id", "")).get("subscription", "")
    subscription = values.get("subscription_id", "")
    if subscription and subnet_subscription and subnet_subscription.lower() != subscription.lower():
        problems.append(
            f"ACI_SUBNET_ID is in subscription {subnet_subscription}, but AZURE_SUBSCRIPTION_ID is "
            f"{subscription}; the container group and its subnet must be in the same subscription"
        )
    if values.get("init_command") and not values.get("init_image"):
        problems.append(
            f"ACI_INIT_COMMAND is set without ACI_INIT_IMAGE; e.g. ACI_INIT_IMAGE={example['ACI_INIT_IMAGE']}"
        )
    return problems


def unknown_setting_warnings(variables: dict[str, str]) -> list[str]:
    """ACI_* names this script does not read are likely typos: name the closest known one."""
    known = [setting.name for setting in SETTINGS if setting.name.startswith("ACI_")]
    warnings = []
    for key in sorted(variables):
        if key.startswith("ACI_") and key not in known and not key.startswith((ENV_PREFIX, SECURE_ENV_PREFIX)):
            close = difflib.get_close_matches(key, [*known, ENV_PREFIX + "<NAME>", SECURE_ENV_PREFIX + "<NAME>"], 1)
            guess = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{key} is not a setting deploy.py reads, so it is ignored{guess}")
    return warnings


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


def show_progress() -> Callable[[ContainerGroup], None]:
    shown: dict = {}

    def show(group: ContainerGroup) -> None:
        for line in progress_lines(group, shown):
            say("  " + line)

    return show


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


def warning_events(client: ContainerInstanceManagementClient, settings: Settings) -> list[str]:
    """The Warning events of a group whose provisioning failed: they say why."""
    group = client.container_groups.get(settings.resource_group, settings.container_group_name)
    return [
        f"{owner}: {event.name}: {event.message}"
        for owner, view in instance_views(group)
        for event in view.events or []
        if event.type == "Warning"
    ]


def still_running_guidance(settings: Settings, env_file: str | None, what: str) -> None:
    group = f"-g {settings.resource_group} -n {settings.container_group_name}"
    env_option = f" --env-file {env_file}" if env_file else ""
    say(f"The {what} goes on in Azure. Check it:")
    say(f'  az container show {group} --query "{{provisioning: provisioningState, state: instanceView.state}}"')
    say(f"Delete it:\n  python deploy.py --delete{env_option}   (or: az container delete {group} --yes)")


def dry_run_body(settings: Settings) -> dict:
    """The exact JSON that ARM would receive, secure values replaced by a placeholder."""
    masked = dict.fromkeys(settings.secure_environment, SECURE_PLACEHOLDER)
    return build_container_group(dataclasses.replace(settings, secure_environment=masked)).serialize()


def connect(settings: Settings) -> ContainerInstanceManagementClient:
    try:
        return create_client(settings)
    except ValueError as error:  # a certificate that cannot be loaded (wrong password, no private key)
        raise UsageError(f"AZURE_CLIENT_CERTIFICATE_PATH cannot be used: {error} (nothing was sent to Azure)") from None


def run(args: argparse.Namespace, client: ContainerInstanceManagementClient, settings: Settings) -> int:
    """Deploy or delete, as asked; the exit code."""
    group = f"container group {settings.container_group_name} in resource group {settings.resource_group}"
    if args.delete:
        deleted = delete(client, settings, args.timeout, on_progress=lambda _: say(f"Deleting {group} ..."))
        print(f"container group {settings.container_group_name}: {'deleted' if deleted else 'does not exist'}"
              f"{'' if deleted else ', nothing to delete'}")  # fmt: skip
        return 0
    say(f"Deploying {group} ({settings.location}) ...")
    try:
        deployed = create_or_update(client, settings, args.timeout, on_progress=show_progress())
    except HttpResponseError as error:
        if error.response is None or error.response.request.method == "PUT":
            raise  # Azure refused the request itself
        report_error(error, warning_events(client, settings))  # accepted, then failed: the events say why
        return 1
    text, warnings = summary(deployed)
    print(text)
    logs = f"az container logs -g {settings.resource_group} -n {settings.container_group_name}"
    for warning in warnings:
        say(f"warning: {warning}; see its logs: {logs}")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
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
    args.mode = "dry-run" if args.dry_run else "delete" if args.delete else "deploy"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_dotenv(args.env_file or ".env", override=False)  # the real environment wins
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    # Azure's INFO logs redact headers and omit bodies; never set logging_enable, which logs both.
    logging.getLogger("azure").setLevel(logging.INFO if args.verbose else logging.ERROR)
    try:
        settings, warnings = load_settings(dict(os.environ), args.mode)
        for warning in warnings:
            say(f"warning: {warning}")
        if args.dry_run:
            print(json.dumps(dry_run_body(settings), indent=2))
            say(f"dry run: the body of PUT .../containerGroups/{settings.container_group_name}; nothing was sent")
            return 0
        client = connect(settings)
    except UsageError as error:
        say(f"error: {error}")
        return 2
    what = "deletion" if args.delete else "deployment"
    try:
        return run(args, client, settings)
    except TimeoutError:
        say(f"error: gave up waiting after {args.timeout:g} s (--timeout).")
        still_running_guidance(settings, args.env_file, what)
        return 4
    except KeyboardInterrupt:
        say("interrupted.")
        still_running_guidance(settings, args.env_file, what)
        return 130
    except ClientAuthenticationError as error:
        report_error(error)
        return 3
    except HttpResponseError as error:
        report_error(error)
        return 3 if error.status_code == 403 else 1
    except (ServiceRequestError, ServiceResponseError) as error:  # after azure-core's retries
        say(f"error: could not reach Azure ({error.message}); check the network, proxy and endpoints")
        return 1


if __name__ == "__main__":
    sys.exit(main())
