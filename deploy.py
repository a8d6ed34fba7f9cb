# SPDX-License-Identifier: MIT
"""Deploy an Azure Container Instances group into a virtual network subnet that pulls its image from a
private Azure Container Registry as a user-assigned managed identity: no registry password exists.

USAGE:
    python deploy.py [--env-file PATH] [--dry-run | --delete | --recreate] [--timeout SECONDS] [-v]

    README.md explains the prerequisites (registry, identity, subnet, service principal) as az commands.

    The top half of this file is the sample to copy, between [START sample] and [END sample]: a
    Settings object, create_client, build_container_group, create_or_update and delete. It prints
    nothing and reads no environment. The bottom half is this command line.

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
import codecs
import difflib
import io
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
from dotenv import dotenv_values

SECURE_PLACEHOLDER = "<secure value not shown>"
ENV_PREFIX, SECURE_ENV_PREFIX = "ACI_ENV_", "ACI_SECURE_ENV_"
LOG_LINES = 20  # how much of a stopped container's log is shown
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
# host[:port]/path[:tag][@digest], as the Docker reference grammar has it; the host needs a dot or port.
IMAGE = re.compile(
    r"(?P<host>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?)/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
MAX_PORTS = 5  # ACI's limit per IP address
# Ports ACI documents as reserved ("avoid"): groups that open them can stay Waiting.
RESERVED_PORTS = [range(22, 23), range(1025, 1028), range(3389, 3400), range(9999, 10000), range(19000, 19001),
                  range(19080, 19081), range(19100, 19101), range(19390, 19391), range(20000, 30001),
                  range(49152, 65535)]  # fmt: skip


class UsageError(Exception):
    """A problem with the command line, its files or its settings; nothing was sent to Azure."""


class SettingsError(UsageError):
    """Every problem with the settings, each naming its variable; missing: whether one is not set."""

    def __init__(self, problems: list[str], missing: bool = False):
        super().__init__("the settings need fixing (nothing was sent to Azure):\n  " + "\n  ".join(problems))
        self.problems, self.missing = problems, missing


# Checks: each turns a setting's text into its Settings value, or raises ValueError saying what it must be.
def matching(pattern: str, what: str, then: Callable[[str], object] = str) -> Callable[[str], object]:
    def check(value: str) -> object:
        if not re.fullmatch(pattern, value):
            raise ValueError(what)
        return then(value)

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
    unique = tuple(dict.fromkeys(int(port) for port in ports)) or (80,)
    if len(unique) > MAX_PORTS:
        raise ValueError(f"at most {MAX_PORTS} ports, ACI's limit for one IP address ({len(unique)} given)")
    return unique


def command_line(value: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(value))
    except ValueError as error:
        raise ValueError(f"a shell command line ({error})") from None


def one_of(what: str, *choices: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        found = [choice for choice in choices if choice.lower() == value.lower()]
        if not found:
            raise ValueError(f"{what}: {', '.join(choices[:-1])} or {choices[-1]}")
        return found[0]

    return check


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


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    field: str  # the Settings field it sets
    example: str  # a valid value: shown in errors about it, and the value .env.example gives
    check: Callable[[str], object]  # text -> the field's value; ValueError says what it must be
    scope: str = "deploy"  # used to "deploy" (and dry-run), to "login" (deploy and delete), or by "all"
    required: bool = False
    hidden: bool = False  # a credential, or an ID a secret may be pasted into: errors never echo its value


ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EXAMPLE_GROUP_ID = f"/subscriptions/{ZERO_GUID}/resourceGroups/rg-aci-private/providers"
SETTINGS = (
    Setting("AZURE_TENANT_ID", "tenant_id", ZERO_GUID,
            matching(r"[0-9a-zA-Z.-]+", "a tenant ID (a GUID or a domain)"), "login", True, True),
    Setting("AZURE_CLIENT_ID", "client_id", ZERO_GUID,
            matching(GUID.pattern, "an application (client) ID (a GUID)"), "login", True, True),
    Setting("AZURE_CLIENT_SECRET", "client_secret", "the secret from: az ad sp create-for-rbac", str, "login",
            hidden=True),
    Setting("AZURE_CLIENT_CERTIFICATE_PATH", "certificate_path", "/path/to/sp-cert.pem", str, "login"),
    Setting("AZURE_CLIENT_CERTIFICATE_PASSWORD", "certificate_password", "only for an encrypted certificate",
            str, "login", hidden=True),
    Setting("AZURE_SUBSCRIPTION_ID", "subscription_id", ZERO_GUID,
            matching(GUID.pattern, "a subscription ID (a GUID)"), "all", True, True),
    Setting("AZURE_RESOURCE_GROUP", "resource_group", "rg-aci-private",
            matching(r"[-\w.()]{0,89}[-\w()]", "a resource group name"), "all", True),
    Setting("AZURE_LOCATION", "location", "westeurope",
            matching(r"[A-Za-z0-9 ]+", "an Azure region name", lambda v: v.replace(" ", "").lower()), required=True),
    Setting("ACI_CONTAINER_GROUP_NAME", "container_group_name", "aci-private-demo",
            matching(r"(?!.*--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a valid container group name"), "all", True),
    Setting("ACI_SUBNET_ID", "subnet_id",
            f"{EXAMPLE_GROUP_ID}/Microsoft.Network/virtualNetworks/vnet-aci/subnets/snet-aci",
            resource_id("Microsoft.Network/virtualNetworks/subnets"), required=True, hidden=True),
    Setting("ACI_IDENTITY_ID", "identity_id",
            f"{EXAMPLE_GROUP_ID}/Microsoft.ManagedIdentity/userAssignedIdentities/id-aci-acrpull",
            resource_id("Microsoft.ManagedIdentity/userAssignedIdentities"), required=True, hidden=True),
    Setting("ACI_IMAGE", "image", "acrprivatedemo.azurecr.io/aci-helloworld:latest", registry_image, required=True),
    Setting("ACI_CPU", "cpu", "1", positive_number),
    Setting("ACI_MEMORY_GB", "memory_in_gb", "1.5", positive_number),
    Setting("ACI_PORTS", "ports", "80", port_list),
    Setting("ACI_COMMAND", "command", "python -m http.server 80", command_line),
    Setting("ACI_RESTART_POLICY", "restart_policy", "Always",
            one_of("a restart policy", "Always", "OnFailure", "Never")),
    Setting("ACI_INIT_IMAGE", "init_image", "acrprivatedemo.azurecr.io/migrate:1.0", image_reference),
    Setting("ACI_INIT_COMMAND", "init_command", "python migrate.py", command_line),
    Setting("ACI_DNS_SERVERS", "dns_servers", "10.0.2.4", ip_list),
    Setting("AZURE_AUTHORITY_HOST", "authority_host", "https://login.microsoftonline.com", https_url, "login"),
    Setting("AZURE_RESOURCE_MANAGER_ENDPOINT", "resource_manager_endpoint", "https://management.azure.com",
            https_url, "login"),
)  # fmt: skip
EXAMPLES = {setting.name: setting.example for setting in SETTINGS}
SCOPES = {
    "deploy": {"all", "deploy", "login"},
    "recreate": {"all", "deploy", "login"},
    "dry-run": {"all", "deploy"},
    "delete": {"all", "login"},
}


def ours(name: str) -> bool:
    """A variable deploy.py reads."""
    return name in EXAMPLES or name.startswith("ACI_")


def clean(value: str | None) -> str:
    """Whitespace and one pair of quotes pasted around a value are not part of it."""
    value = (value or "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def problem_with(setting: Setting, value: str, what: str) -> str:
    if setting.hidden:  # a secret may have been pasted here: describe the value, never echo it
        shape = f"{len(value)} characters" + ("" if "/" in value or GUID.fullmatch(value) else ", not a GUID")
        return f"{setting.name} (value not shown: {shape}) is not {what}; for example {setting.name}={setting.example}"
    return f"{setting.name}={value!r} is not {what}; for example {setting.name}={setting.example}"


def load_settings(variables: dict[str, str], mode: str = "deploy") -> tuple[Settings, list[str]]:
    """Settings for mode (a key of SCOPES) and warnings, or SettingsError naming every problem at once.
    Reads nothing but the variables given (and whether a certificate file is readable)."""
    problems: list[str] = []
    values: dict = {}
    missing = False
    for setting in (s for s in SETTINGS if s.scope in SCOPES[mode]):
        value = clean(variables.get(setting.name))
        if not value:
            if setting.required:
                problems.append(f"{setting.name} is not set; for example {setting.name}={setting.example}")
                missing = True
            continue
        try:
            values[setting.field] = setting.check(value)
        except ValueError as error:
            problems.append(problem_with(setting, value, str(error)))
    if mode != "delete":
        values.update(environment_settings(variables, problems))
    problems += cross_check(values, mode)
    if problems:
        raise SettingsError(problems, missing)
    return Settings(**values), setting_warnings(variables, values.get("ports", ()))


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
    if mode != "dry-run" and not values.get("client_secret"):
        if not values.get("certificate_path"):
            problems.append(
                "Neither AZURE_CLIENT_SECRET nor AZURE_CLIENT_CERTIFICATE_PATH is set; for example "
                f"AZURE_CLIENT_SECRET=<{EXAMPLES['AZURE_CLIENT_SECRET']}>"
            )
        elif not os.access(values["certificate_path"], os.R_OK):
            problems.append(
                "AZURE_CLIENT_CERTIFICATE_PATH names no readable file; set it to a PEM or PKCS12 file with the "
                f"certificate and its private key, for example {EXAMPLES['AZURE_CLIENT_CERTIFICATE_PATH']}"
            )
    subnet_subscription = parse_resource_id(values.get("subnet_id", "")).get("subscription", "")
    subscription = values.get("subscription_id", "")
    if subscription and subnet_subscription and subnet_subscription.lower() != subscription.lower():
        problems.append(
            "ACI_SUBNET_ID is in another subscription than AZURE_SUBSCRIPTION_ID; the container group and its "
            "subnet must be in the same subscription"
        )
    if values.get("init_command") and not values.get("init_image"):
        problems.append(
            f"ACI_INIT_COMMAND is set without ACI_INIT_IMAGE; e.g. ACI_INIT_IMAGE={EXAMPLES['ACI_INIT_IMAGE']}"
        )
    return problems


def setting_warnings(variables: dict[str, str], ports: tuple[int, ...]) -> list[str]:
    """Likely typos (ACI_* names this script does not read), and ports ACI reserves."""
    known = [name for name in EXAMPLES if name.startswith("ACI_")] + [
        ENV_PREFIX + "<NAME>",
        SECURE_ENV_PREFIX + "<NAME>",
    ]
    warnings = []
    for key in sorted(variables):
        if key.startswith("ACI_") and key not in EXAMPLES and not key.startswith((ENV_PREFIX, SECURE_ENV_PREFIX)):
            close = difflib.get_close_matches(key, known, 1)
            guess = f"; did you mean {close[0]}?" if close else ""
            warnings.append(f"{key} is not a setting deploy.py reads, so it is ignored{guess}")
    for port in (port for port in ports if any(port in reserved for reserved in RESERVED_PORTS)):
        warnings.append(
            f"ACI_PORTS: port {port} is on ACI's list of reserved ports; groups that use it can stay Waiting"
        )
    return warnings


def read_env_file(path: str, named: bool) -> dict[str, str]:
    """The file's variables as written: values literal (no ${VAR} expansion); {} for a missing default .env."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        if named:
            raise UsageError(f"--env-file {path}: no such file") from None
        return {}
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not an env file; name a file with --env-file PATH") from None
    except OSError as error:
        raise UsageError(f"the env file {path} cannot be read ({error.strerror}); check its permissions") from None
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))  # PowerShell 5's > and Out-File
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")  # utf-8-sig also drops Notepad's byte order mark
    except UnicodeDecodeError as error:
        raise UsageError(
            f"the env file {path} is not UTF-8 text (byte {error.start + 1} is {data[error.start]:#04x}); save it as "
            "UTF-8 (Notepad: Save As, Encoding UTF-8; PowerShell: Set-Content -Encoding utf8)"
        ) from None
    return {name: value or "" for name, value in dotenv_values(stream=io.StringIO(text), interpolate=False).items()}


def read_variables(args: argparse.Namespace) -> tuple[dict[str, str], bool]:
    """The variables deploy.py sees, the real environment winning over the env file; and whether a file was read."""
    path = args.env_file or ".env"
    from_file = read_env_file(path, named=bool(args.env_file))
    for name in sorted(name for name in from_file if ours(name) and name in os.environ):
        if clean(os.environ[name]) != clean(from_file[name]):
            say(f"warning: {name} is set in the environment and in {path}, with different values; the environment's "
                f"value is used (unset {name} to use the file's)")  # fmt: skip
    if args.verbose:
        say(f"settings from the environment: {', '.join(sorted(filter(ours, os.environ))) or 'none'}")
        say(f"settings from {path}: {', '.join(sorted(n for n in from_file if ours(n) and n not in os.environ))}")
    for name, value in from_file.items():  # what the file adds reaches the libraries too (REQUESTS_CA_BUNDLE)
        os.environ.setdefault(name, value)
    return dict(os.environ), bool(from_file) or os.path.isfile(path)


def settings_from(args: argparse.Namespace) -> Settings:
    variables, found = read_variables(args)
    try:
        settings, warnings = load_settings(variables, args.mode)
    except SettingsError as error:
        if error.missing and not found:
            where = f"no .env file was found in {os.getcwd()}: copy .env.example to .env there, or name one with "
            raise SettingsError([*error.problems, where + "--env-file PATH"], True) from None
        raise
    for warning in warnings:
        say(f"warning: {warning}")
    return settings


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def instance_views(group: ContainerGroup) -> list:
    containers = (group.init_containers or []) + (group.containers or [])
    views = [("group", group.instance_view)] + [(container.name, container.instance_view) for container in containers]
    return [(owner, view) for owner, view in views if view is not None]


def in_time_order(events: list | None) -> list:
    """Azure lists events in no particular order, and a different one each time."""
    return sorted(events or [], key=lambda event: (event.first_timestamp is None, event.first_timestamp))


def progress_lines(group: ContainerGroup, shown: dict) -> list[str]:
    """Lines for states that changed and events not shown yet; shown remembers what was printed."""
    lines = {("provisioning",): f"provisioning: {group.provisioning_state}"}
    for owner, view in instance_views(group):
        current = getattr(view, "current_state", None)  # containers have a current_state, the group a state
        state = current.state if current else getattr(view, "state", None)
        if state:
            detail = f" ({current.detail_status})" if current and current.detail_status else ""
            lines[(owner, "state")] = f"{owner}: {state}{detail}"
        for event in in_time_order(view.events):
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


def summary(group: ContainerGroup) -> tuple[str, dict[str, str]]:
    """The result for stdout, and the containers that should be running and are not (name: state)."""
    view, ip = group.instance_view, group.ip_address
    ports = ", ".join(f"{port.port}/{port.protocol or 'TCP'}" for port in ip.ports or []) if ip else ""
    lines = [
        f"container group:    {group.name}",
        f"provisioning state: {group.provisioning_state}",
        f"group state:        {view.state if view else 'unknown'}",
        f"private IP:         {ip.ip if ip and ip.ip else 'not assigned'} ({ports})",
    ]
    stopped = {}
    for kind, containers in (("init container", group.init_containers or []), ("container", group.containers)):
        for container in containers:
            current = container.instance_view.current_state if container.instance_view else None
            state = current.state if current else "unknown"
            restarts = container.instance_view.restart_count if container.instance_view else 0
            exit_code = f", exit code {current.exit_code}" if current and current.exit_code is not None else ""
            lines.append(f"{kind} {container.name}: {state}{exit_code}, restarts {restarts or 0}")
            # An init container, and an app container that is not restarted, are done when they exit with 0.
            run_once = kind == "init container" or group.restart_policy != "Always"
            if state != "Running" and not (run_once and state == "Terminated" and current.exit_code == 0):
                detail = f" ({current.detail_status})" if current and current.detail_status else ""
                stopped[container.name] = f"{state}{exit_code}{detail}"
    return "\n".join(lines), stopped


def show_logs(client: ContainerInstanceManagementClient, settings: Settings, stopped: dict[str, str]) -> None:
    group = f"-g {settings.resource_group} -n {settings.container_group_name}"
    for name, state in stopped.items():
        say(f"error: provisioning succeeded, but container {name} is {state}, not running. The end of its log:")
        try:
            content = client.containers.list_logs(
                settings.resource_group, settings.container_group_name, name, tail=LOG_LINES
            ).content
            for line in (content or "(empty)").splitlines()[-LOG_LINES:]:
                say(f"  | {line}")
        except HttpResponseError as error:
            say(f"  (its log cannot be read: {error.error.code if error.error else error.status_code})")
        say(f"  whole log: az container logs {group} --container-name {name}")


PULL_HINT = (
    "check that the image exists in the registry, that ACI_IDENTITY_ID has AcrPull on the registry (a new role "
    "assignment can take 10-30 minutes to apply; on an ABAC registry it needs Container Registry Repository "
    "Reader), and that the registry allows trusted Microsoft services: "
    "az acr update --name <registry> --allow-trusted-services true"
)
CAPACITY_HINT = (
    "the region has no capacity for this group now; run again later, ask for less CPU or memory, or use another "
    "region (with a VNet there)"
)
AMBIGUOUS_HINT = "a registry credential must have an identity and no username or password"
NEW_PRINCIPAL = (
    "; if the service principal was created in the last few minutes, wait a minute and run again: a new "
    "principal takes time to reach every Entra ID region"
)
# What to check, by Azure's exact error code (Entra ID's AADSTS code is in its message).
HINTS = {
    "InaccessibleImage": PULL_HINT,
    "RegistryErrorResponse": "the registry refused or failed the pull: for an Azure registry, check that its "
    "network rules allow trusted Microsoft services; a registry outside Azure (such as Docker Hub) rate-limits "
    "ACI's shared addresses: import the image into your registry with az acr import",
    "InvalidImageRegistryIdentity": "the registry credential must name a user-assigned identity attached to the "
    "group; check ACI_IDENTITY_ID: az identity show -g <group> -n <identity> --query id -o tsv",
    "AmbiguousImageRegistryCredentialType": AMBIGUOUS_HINT,
    "AmbiguousImageResitryCredentialType": AMBIGUOUS_HINT,  # Azure's own spelling in its documentation
    "MoreImageRegistryCredentialsThanContainers": "each registry host in ACI_IMAGE and ACI_INIT_IMAGE gets a "
    "credential, and a group may not have more credentials than containers: use one registry for both images",
    "PrincipalNotFound": "the identity or service principal was created moments ago and has not reached every "
    "region yet; wait a minute or two and run again",
    "LinkedAuthorizationFailed": "the service principal also needs Microsoft.Network/virtualNetworks/subnets/"
    "join/action on the subnet (Network Contributor) and Managed Identity Operator on the identity",
    "AuthorizationFailed": "the service principal needs a role that allows Microsoft.ContainerInstance/"
    "containerGroups/write on the resource group, e.g. az role assignment create --assignee-object-id <object ID> "
    "--assignee-principal-type ServicePrincipal --role Contributor --scope <resource group ID>",
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
    "InvalidContainerGroupUpdate": "Azure cannot change the OS type, CPU, memory, restart policy or subnet of a "
    "group in place: python deploy.py --recreate, or python deploy.py --delete and then python deploy.py",
    "ServiceUnavailable": CAPACITY_HINT,
    "ResourceGroupNotFound": "create the resource group or fix AZURE_RESOURCE_GROUP: "
    "az group create -n <group> -l <region>",
    "InvalidAuthenticationToken": "the token is not for this ARM endpoint; check AZURE_RESOURCE_MANAGER_ENDPOINT "
    "and AZURE_TENANT_ID (the subscription's tenant)",
    "AADSTS7000215": "AZURE_CLIENT_SECRET is wrong or expired; make a new one: "
    "az ad sp credential reset --id <AZURE_CLIENT_ID>" + NEW_PRINCIPAL,
    "AADSTS700027": "the certificate is not registered on the app; add it: "
    "az ad app credential reset --id <AZURE_CLIENT_ID> --cert @<certificate.pem> --append",
    "AADSTS700016": "AZURE_CLIENT_ID is not an application in tenant AZURE_TENANT_ID; check both: "
    "az ad sp show --id <AZURE_CLIENT_ID>" + NEW_PRINCIPAL,
    "AADSTS90002": "tenant AZURE_TENANT_ID does not exist; look it up: az account show --query tenantId -o tsv",
}
# Where a failed deployment's cause is a Warning event, by the event's name (without a trailing period).
EVENT_HINTS = {"InsufficientCapacity": CAPACITY_HINT, "Failed": PULL_HINT}


def error_code(error: HttpResponseError) -> str:
    """Azure's error code; for Entra ID, the AADSTS code in the message."""
    if error.error and error.error.code:
        return error.error.code
    found = re.search(r"AADSTS\d+", error.message or "")
    if found:
        return found[0]
    # MSAL reports an unknown tenant (AADSTS90002 in the discovery document) without the code.
    return "AADSTS90002" if "Unable to get authority configuration" in (error.message or "") else ""


def report_error(error: HttpResponseError, details: list[str] = (), events: list = ()) -> None:
    """The Azure error code and message, details and Warning events, and a hint."""
    code = error_code(error)
    message = error.error.message if error.error and error.error.message else error.message
    say(f"error: {error.error.code}: {message}" if error.error and error.error.code else f"error: {message}")
    for line in details:
        say(f"  {line}")
    for owner, event in events:
        say(f"  {owner}: {event.name}: {event.message}")
    names = [event.name.rstrip(".") for _, event in events]
    hint = next((EVENT_HINTS[name] for name in names if name in EVENT_HINTS), None) or HINTS.get(code)
    if hint:
        say(f"hint: {hint}")


def warning_events(client: ContainerInstanceManagementClient, settings: Settings) -> list:
    """The Warning events of a group whose provisioning failed, (owner, event) in time order: they say why."""
    group = client.container_groups.get(settings.resource_group, settings.container_group_name)
    return [
        (owner, event) for owner, view in instance_views(group) for event in in_time_order(view.events)
        if event.type == "Warning"
    ]  # fmt: skip


def changed_settings(client: ContainerInstanceManagementClient, settings: Settings) -> list[str]:
    """The settings Azure cannot change in place whose live value differs, as NAME: live -> wanted."""

    def fixed(group: ContainerGroup) -> dict[str, str]:
        app = next((c for c in group.containers if c.name == settings.container_group_name), group.containers[0])
        return {
            "ACI_CPU": f"{app.resources.requests.cpu:g}",
            "ACI_MEMORY_GB": f"{app.resources.requests.memory_in_gb:g}",
            "ACI_RESTART_POLICY": group.restart_policy or "Always",
            "ACI_SUBNET_ID": ", ".join(subnet.id for subnet in group.subnet_ids or []) or "none",
            "OS type": group.os_type,
        }

    live = fixed(client.container_groups.get(settings.resource_group, settings.container_group_name))
    wanted = fixed(build_container_group(settings))
    return [f"{name}: {live[name]} -> {wanted[name]}" for name in wanted if live[name].lower() != wanted[name].lower()]


def unreachable(error: BaseException | None) -> ServiceRequestError | ServiceResponseError | None:
    """The network failure behind an error (a sign-in failure wraps it), if any."""
    while error is not None and not isinstance(error, ServiceRequestError | ServiceResponseError):
        error = error.__cause__ or error.__context__
    return error


def report_unreachable(error: ServiceRequestError | ServiceResponseError, url: str) -> None:
    host = urlsplit(url).netloc
    say(f"error: could not reach {host} ({error.message})")
    if "CERTIFICATE_VERIFY_FAILED" in error.message:
        proxy = "behind a TLS-inspecting proxy, point REQUESTS_CA_BUNDLE at a PEM file with its CA"
        say(f"hint: Python does not trust the TLS certificate of {host}; {proxy}: export REQUESTS_CA_BUNDLE=ca.pem")
    else:
        say(f"hint: check the network, DNS, any proxy (HTTPS_PROXY) and the endpoint settings for {host}")


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


def deploy(client: ContainerInstanceManagementClient, settings: Settings, timeout: float) -> int:
    """Create or update the group, wait, and show the outcome; the exit code."""
    say(f"Deploying container group {settings.container_group_name} in resource group {settings.resource_group} "
        f"({settings.location}) ...")  # fmt: skip
    try:
        deployed = create_or_update(client, settings, timeout, on_progress=show_progress())
    except HttpResponseError as error:
        if error_code(error) == "InvalidContainerGroupUpdate":  # the live group says what cannot change
            report_error(error, details=changed_settings(client, settings))
            return 1
        if error.response is None or error.response.request.method == "PUT":
            raise  # Azure refused the request itself
        report_error(error, events=warning_events(client, settings))  # accepted, then failed: events say why
        return 1
    text, stopped = summary(deployed)
    print(text)
    show_logs(client, settings, stopped)
    return 1 if stopped else 0


def recreate(client: ContainerInstanceManagementClient, settings: Settings, timeout: float) -> int:
    """Delete the group if it exists, wait until it is gone, then deploy it anew."""
    deadline = time.monotonic() + timeout
    name = settings.container_group_name
    gone = delete(client, settings, timeout, on_progress=lambda _: say(f"Deleting container group {name} ..."))
    code = None
    try:
        code = deploy(client, settings, deadline - time.monotonic())
        return code
    finally:
        if gone and code != 0:
            say(f"note: --recreate deleted the old container group {name}: it is gone, and the new one is not running")


def run(args: argparse.Namespace, client: ContainerInstanceManagementClient, settings: Settings) -> int:
    """Deploy, recreate or delete, as asked; the exit code."""
    name = settings.container_group_name
    if args.delete:
        deleted = delete(
            client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ...")
        )
        print(f"container group {name}: {'deleted' if deleted else 'does not exist, nothing to delete'}")
        return 0
    return (recreate if args.recreate else deploy)(client, settings, args.timeout)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env-file", help="settings file (default: .env, if present)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the request body; send nothing")
    mode.add_argument("--delete", action="store_true", help="delete the container group and wait")
    mode.add_argument("--recreate", action="store_true", help="delete the group if it exists, then create it")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the outcome (1800)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr (never a secret)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be a positive number of seconds, for example --timeout 600")
    args.mode = "dry-run" if args.dry_run else "delete" if args.delete else "recreate" if args.recreate else "deploy"
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    # Azure's INFO logs redact headers and omit bodies; never set logging_enable, which logs both.
    logging.getLogger("azure").setLevel(logging.INFO if args.verbose else logging.ERROR)
    try:
        settings = settings_from(args)
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
        if unreachable(error):  # Entra ID could not be reached: not a problem with the credentials
            report_unreachable(unreachable(error), settings.authority_host)
            return 1
        report_error(error)
        return 3
    except HttpResponseError as error:
        report_error(error)
        return 3 if error.status_code == 403 else 1
    except (ServiceRequestError, ServiceResponseError) as error:  # after azure-core's retries
        report_unreachable(error, settings.resource_manager_endpoint)
        return 1


if __name__ == "__main__":
    sys.exit(main())
