# SPDX-License-Identifier: MIT
"""Deploy an Azure Container Instances group into a virtual network subnet that pulls its images from a
private Azure Container Registry as a user-assigned managed identity: no registry password exists.

USAGE:
    python deploy.py [--env-file PATH] [--dry-run | --check | --delete | --recreate]
                     [--timeout SECONDS] [--settle SECONDS] [-v]

    README.md explains the prerequisites (registry, identity, subnet, who deploys) as az commands.
    The top half of this file is the sample to copy, between [START sample] and [END sample]; it
    prints nothing and reads no environment. The bottom half is this command line.

    Settings come from environment variables or an env file (default .env); the real environment
    wins. To deploy: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_LOCATION (the VNet's region),
    ACI_CONTAINER_GROUP_NAME, ACI_SUBNET_ID (delegated to Microsoft.ContainerInstance/containerGroups),
    ACI_IDENTITY_ID (with AcrPull on the registry) and ACI_IMAGE (myregistry.azurecr.io/app:1.0).
    Sign-in: the Azure CLI's account (az login) unless AZURE_FEDERATED_TOKEN_FILE (CI with OIDC),
    AZURE_CLIENT_CERTIFICATE_PATH or AZURE_CLIENT_SECRET is set (each with AZURE_TENANT_ID and
    AZURE_CLIENT_ID), or AZURE_TOKEN_CREDENTIALS names a way. Every setting: README.md, Configuration.

EXIT CODES:
    0 done, 1 Azure rejected the request, the deployment failed, a container is not running or --check
    found a problem, 2 configuration or usage error (nothing sent), 3 sign-in or authorization failed,
    4 gave up waiting (--timeout), 130 interrupted (Ctrl-C).
"""

if __name__ == "__main__":  # Ctrl-C while the libraries load: "interrupted.", not a traceback
    import os
    import signal
    import sys

    signal.signal(signal.SIGINT, lambda *_: (sys.stderr.write("interrupted.\n"), os._exit(130)))

# [START sample]
import dataclasses
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from azure.core import AzureClouds
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.identity import (
    AzureAuthorityHosts,
    AzureCliCredential,
    CertificateCredential,
    ClientSecretCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
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
    Volume,
    VolumeMount,
)
from azure.mgmt.core.tools import get_arm_endpoints

ACR_SUFFIXES = (".azurecr.io", ".azurecr.cn", ".azurecr.us")
POLL_SECONDS = 2  # the SDK defaults to 30 s; ACI sends no Retry-After, so this is how soon we notice the end
PROGRESS_SECONDS = 5  # how often the wait reads the group for new states and events
SHARED_VOLUME = "shared"  # ACI volume names are 5-63 characters


@dataclasses.dataclass(frozen=True)
class ContainerSettings:
    """One container. Init containers take no CPU, memory or ports: ACI gives them the whole group's."""

    name: str
    image: str
    command: tuple[str, ...] = ()
    environment: dict[str, str] = dataclasses.field(default_factory=dict)
    secure_environment: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    cpu: float = 1.0
    memory_in_gb: float = 1.5
    ports: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True)
class Settings:
    """Where the group goes, what it runs and who deploys it. Secrets stay out of repr()."""

    subscription_id: str
    resource_group: str
    container_group_name: str
    location: str = ""
    subnet_id: str = ""
    identity_id: str = ""
    containers: tuple[ContainerSettings, ...] = ()  # the first is the main one, named after the group
    init_containers: tuple[ContainerSettings, ...] = ()  # run one after another, before the containers
    shared_dir: str = ""  # an empty directory mounted at this path in every container, init containers too
    restart_policy: str = "Always"
    dns_servers: tuple[str, ...] = ()
    # Who deploys: azure_cli, federated_token, managed_identity, certificate or client_secret.
    sign_in: str = "azure_cli"
    tenant_id: str = ""
    client_id: str = ""
    federated_token_file: str = ""
    certificate_path: str = ""
    certificate_password: str = dataclasses.field(default="", repr=False)
    client_secret: str = dataclasses.field(default="", repr=False)
    authority_host: str = "https://" + AzureAuthorityHosts.AZURE_PUBLIC_CLOUD
    resource_manager_endpoint: str = "https://management.azure.com"
    answer_timeout: float = 60  # seconds to wait for any one answer from Entra ID or ARM (azure-core: 300)


def waits(settings: Settings) -> dict[str, float]:
    """How long azure-core waits for a connection and for each answer (it retries a few times)."""
    return {"connection_timeout": min(settings.answer_timeout, 10), "read_timeout": settings.answer_timeout}


# [START credential]
def create_credential(settings: Settings) -> TokenCredential:
    """The azure-identity credential for settings.sign_in; each one gets and renews its own tokens."""
    # Any other authority (Azure Stack Hub, a test endpoint) must not send MSAL to login.microsoftonline.com.
    hosts = AzureAuthorityHosts
    microsoft = (hosts.AZURE_PUBLIC_CLOUD, hosts.AZURE_CHINA, hosts.AZURE_GOVERNMENT)
    cloud = {"authority": settings.authority_host, **waits(settings),
             "disable_instance_discovery": urlsplit(settings.authority_host).hostname not in microsoft}  # fmt: skip
    tenant, client = settings.tenant_id, settings.client_id
    match settings.sign_in:
        case "azure_cli":  # a person after `az login`, or CI after azure/login: az's account, for this subscription
            return AzureCliCredential(subscription=settings.subscription_id)
        case "federated_token":  # CI with OIDC (GitHub Actions, GitLab, Azure DevOps): a short-lived token, no secret
            return WorkloadIdentityCredential(tenant_id=tenant, client_id=client,
                                              token_file_path=settings.federated_token_file, **cloud)  # fmt: skip
        case "managed_identity":  # a VM or build agent in Azure, as its own identity (user-assigned: its client ID)
            return ManagedIdentityCredential(client_id=client or None)
        case "certificate":  # a service principal with a certificate
            return CertificateCredential(tenant, client, certificate_path=settings.certificate_path,
                                         password=settings.certificate_password or None, **cloud)  # fmt: skip
        case "client_secret":  # a service principal with a secret: the least preferred way, a password to keep
            return ClientSecretCredential(tenant, client, settings.client_secret, **cloud)
    raise ValueError(f"unknown sign_in {settings.sign_in!r}")


# [END credential]


# [START create_client]
def arm_scopes(endpoint: str) -> list[str]:
    """The token audience of a known cloud comes from the SDK (Azure Government's is not its endpoint)."""
    clouds = [get_arm_endpoints(cloud) for cloud in AzureClouds]
    known = (c["credential_scopes"] for c in clouds if c["resource_manager"].rstrip("/") == endpoint)
    return next(known, [endpoint + "/.default"])


def create_client(settings: Settings) -> ContainerInstanceManagementClient:
    """An ARM client signed in as create_credential says, for any Azure cloud or a private endpoint."""
    endpoint = settings.resource_manager_endpoint.rstrip("/")
    return ContainerInstanceManagementClient(
        create_credential(settings),
        settings.subscription_id,
        base_url=endpoint,
        credential_scopes=arm_scopes(endpoint),
        polling_interval=POLL_SECONDS,
        **waits(settings),
    )


# [END create_client]


# [START build_container_group]
def registry_servers(images: list[str]) -> list[str]:
    """The Azure Container Registry hosts the images are in, each once: one credential per registry."""
    return sorted(
        {host for host in (image.split("/", 1)[0].lower() for image in images) if host.endswith(ACR_SUFFIXES)}
    )


def build_container_group(settings: Settings) -> ContainerGroup:
    """The request body: a Linux group in the subnet, private IP only, pulling as the identity."""

    def environment(container: ContainerSettings) -> list[EnvironmentVariable]:
        return [EnvironmentVariable(name=k, value=v) for k, v in container.environment.items()] + [
            EnvironmentVariable(name=k, secure_value=v) for k, v in container.secure_environment.items()
        ]

    # One emptyDir volume, mounted at the same path in every container: how they hand files to each other.
    mounts = [VolumeMount(name=SHARED_VOLUME, mount_path=settings.shared_dir)] if settings.shared_dir else None
    containers = [
        Container(
            name=c.name,
            image=c.image,
            command=list(c.command) or None,
            ports=[ContainerPort(port=port, protocol="TCP") for port in c.ports] or None,
            environment_variables=environment(c),
            resources=ResourceRequirements(requests=ResourceRequests(cpu=c.cpu, memory_in_gb=c.memory_in_gb)),
            volume_mounts=mounts,
        )
        for c in settings.containers
    ]
    # Init containers run in order, each to completion, before the containers start.
    init_containers = [
        InitContainerDefinition(name=c.name, image=c.image, command=list(c.command) or None,
                                environment_variables=environment(c) or None, volume_mounts=mounts)
        for c in settings.init_containers
    ]  # fmt: skip
    # Containers share one IP (and reach each other on localhost): it opens every container's ports.
    ports = dict.fromkeys(port for c in settings.containers for port in c.ports)
    # The same identity is attached to the group and named as the credential of each registry, so ACI
    # pulls with an Entra token for that identity: no admin user and no registry password exist anywhere.
    servers = registry_servers([c.image for c in settings.containers + settings.init_containers])
    return ContainerGroup(
        location=settings.location,
        os_type="Linux",
        containers=containers,
        init_containers=init_containers or None,
        restart_policy=settings.restart_policy,
        identity=ContainerGroupIdentity(
            type="UserAssigned", user_assigned_identities={settings.identity_id: UserAssignedIdentities()}
        ),
        image_registry_credentials=[
            ImageRegistryCredential(server=server, identity=settings.identity_id) for server in servers
        ],  # fmt: skip
        # In a subnet the group gets a private IP only: no public IP and no DNS name label.
        subnet_ids=[ContainerGroupSubnetId(id=settings.subnet_id)],
        ip_address=IpAddress(
            type="Private",
            ports=[Port(port=port, protocol="TCP") for port in ports],
            auto_generated_domain_name_label_scope=None,
        ),
        volumes=[Volume(name=SHARED_VOLUME, empty_dir={})] if settings.shared_dir else None,
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
import collections
import datetime
import difflib
import fnmatch
import io
import ipaddress
import json
import logging
import os
import re
import shlex
import signal
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor

import isodate
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy
from azure.mgmt.core.tools import parse_resource_id
from dotenv import dotenv_values

SECURE_PLACEHOLDER = "<secure value not shown>"
LOG_LINES = 20  # how much of a stopped container's log is shown
GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")  # base64url of '{"', twice
# Entra client secrets are about 40 characters with a "~" in them; a value of that shape is never echoed.
SECRET_SHAPE = re.compile(r"(?=.*~)[A-Za-z0-9_.~-]{30,}")
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
# A group's CPU and memory are the sums over its app containers: ACI's maximum per group, and the size
# above which a group may fail for lack of regional capacity.
GROUP_MAXIMUM, CAPACITY_WARNING = {"CPU": 31, "MEMORY_GB": 240}, {"CPU": 4, "MEMORY_GB": 16}


class UsageError(Exception):
    """A problem with the command line, its files or its settings; nothing was sent to Azure."""


class SettingsError(UsageError):
    """Every problem with the settings, each naming its variable; missing: whether one is not set."""

    def __init__(self, problems: list[str], missing: bool = False):
        super().__init__("the settings need fixing (nothing was sent to Azure):\n  " + "\n  ".join(problems))
        self.problems, self.missing = problems, missing


# Settings ---------------------------------------------------------------------------------------------
# Checks: each turns a setting's text into its Settings value, or raises ValueError saying what it must be.
def matching(pattern: str, what: str, then: Callable[[str], object] = str) -> Callable[[str], object]:
    """A check: the whole value matches pattern, and then(value) (whose ValueError means the same) is the result."""

    def check(value: str) -> object:
        try:
            if re.fullmatch(pattern, value):
                return then(value)
        except ValueError:
            pass
        raise ValueError(what)

    return check


def resource_id(resource_type: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.rstrip("/")
        if "/resource/subscriptions/" in value or value.startswith("https://"):
            raise ValueError(f"a {resource_type} resource ID (this is a portal URL: use the part from /subscriptions/ "
                             "up to the resource's name)")  # fmt: skip
        if resource_type.endswith("userAssignedIdentities") and (
            value.lower() == "systemassigned" or GUID.fullmatch(value)
        ):
            raise ValueError("a user-assigned identity's resource ID (a system-assigned identity cannot pull "
                             "images; a client or principal ID is not it: az identity show --query id)")  # fmt: skip
        parts = parse_resource_id(value)
        children = [parts[f"child_type_{n}"] for n in range(1, parts.get("last_child_num", 0) + 1)]
        found = "/".join(filter(None, [parts.get("namespace"), parts.get("type"), *children]))
        if found.lower() != resource_type.lower() or "resource_group" not in parts:
            raise ValueError(f"a {resource_type} resource ID (it names {found or 'no resource type'})")
        return value

    return check


def image_reference(value: str) -> str:
    host, _, path = value.partition("/")
    if path != path.lower() and IMAGE.fullmatch(f"{host}/{path.lower()}"):
        raise ValueError("a valid image reference: repositories are lowercase")
    if not (IMAGE.fullmatch(value) and ("." in host or ":" in host or host == "localhost")):
        raise ValueError("a fully qualified image reference (registry host/repository:tag)")
    return value


def registry_image(value: str) -> str:
    if not image_reference(value).split("/", 1)[0].lower().endswith(ACR_SUFFIXES):
        raise ValueError("in an Azure Container Registry, which the identity pulls from")
    return value


positive_number = matching(r"(?![0.]*$)(\d+\.?\d*|\.\d+)", "a positive number", float)


def port_list(value: str) -> tuple[int, ...]:
    ports = [port.strip() for port in value.split(",") if port.strip()]
    if not all(port.isdigit() and 1 <= int(port) <= 65535 for port in ports):
        raise ValueError("a comma-separated list of ports from 1 to 65535")
    unique = tuple(dict.fromkeys(int(port) for port in ports))
    if len(unique) > MAX_PORTS:
        raise ValueError(f"at most {MAX_PORTS} ports, ACI's limit for one IP address ({len(unique)} given)")
    return unique


def command_line(value: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(value))
    except ValueError as error:
        raise ValueError(f"a shell command line ({error})") from None


def one_of(what: str, *choices: str) -> Callable[[str], str]:
    return matching("(?i)" + "|".join(choices), f"{what}: {', '.join(choices[:-1])} or {choices[-1]}",
                    lambda v: next(choice for choice in choices if choice.lower() == v.lower()))  # fmt: skip


ip_list = matching(
    r"[^,]*(,[^,]*)*",
    "a comma-separated list of IP addresses",
    lambda v: tuple(str(ipaddress.ip_address(a)) for a in map(str.strip, v.split(",")) if a),
)
https_url = matching(r"https://[^/?#\s]+([/?#]\S*)?", "an https:// URL", lambda v: v.rstrip("/"))


def readable_file(value: str) -> str:
    if not os.access(value, os.R_OK) or os.path.isdir(value):
        raise ValueError("a readable file (check the path: ~ is not expanded; inside double quotes write each "
                         "backslash twice, or use /)")  # fmt: skip
    return value


def token_file(value: str) -> str:
    """A federated token file: read here, so that a bad one stops the run before anything is sent."""
    try:
        with open(readable_file(value), "rb") as file:
            token = file.read(1 << 16).strip()
    except OSError as error:
        raise ValueError(f"a readable file ({error.strerror})") from None
    if not token:
        raise ValueError("a file that holds the token (it is empty: write the token just before deploy.py runs)")
    if not JWT.fullmatch(token.decode("latin-1")):
        raise ValueError("a file that holds a JWT (three base64url parts joined by dots; it holds something else)")
    return value


@dataclasses.dataclass(frozen=True)
class Setting:
    name: str  # the environment variable
    field: str  # the Settings (or, scope "container", ContainerSettings) field it sets
    example: str  # a valid value: shown in errors about it, and the value .env.example gives
    check: Callable[[str], object]  # text -> the field's value; ValueError says what it must be
    scope: str = "deploy"  # used to "deploy" (and dry-run), to "login" (deploy and delete), by "all", or "container"
    required: bool = False
    hidden: bool = False  # a credential, or an ID a secret may be pasted into: errors never echo its value


ZERO_GUID = "00000000-0000-0000-0000-000000000000"
EXAMPLE_GROUP_ID = f"/subscriptions/{ZERO_GUID}/resourceGroups/rg-aci-private/providers"
# azure-identity's own selector, lower-cased as it reads it: the sign-in ways each value allows.
TOKEN_CREDENTIALS = {
    "environmentcredential": ("client_secret", "certificate"), "workloadidentitycredential": ("federated_token",),
    "azureclicredential": ("azure_cli",), "managedidentitycredential": ("managed_identity",),
    "dev": ("azure_cli",),  # the only developer credential deploy.py offers
    "prod": ("federated_token", "certificate", "client_secret", "managed_identity"),  # azure-identity's order
}  # fmt: skip
SETTINGS = (
    Setting("AZURE_TOKEN_CREDENTIALS", "token_credentials", "AzureCliCredential",
            one_of("a sign-in way azure-identity names", "EnvironmentCredential", "WorkloadIdentityCredential",
                   "AzureCliCredential", "ManagedIdentityCredential", "dev", "prod"), "login"),
    Setting("AZURE_TENANT_ID", "tenant_id", ZERO_GUID,
            matching(r"[0-9a-zA-Z.-]+", "a tenant ID (a GUID or a domain)"), "login", hidden=True),
    Setting("AZURE_CLIENT_ID", "client_id", ZERO_GUID,
            matching(GUID.pattern, "an application (client) ID (a GUID)"), "login", hidden=True),
    Setting("AZURE_FEDERATED_TOKEN_FILE", "federated_token_file", "/tmp/azure-federated-token", token_file, "login"),
    Setting("AZURE_CLIENT_CERTIFICATE_PATH", "certificate_path", "/path/to/sp-cert.pem", readable_file, "login"),
    Setting("AZURE_CLIENT_CERTIFICATE_PASSWORD", "certificate_password", "only for an encrypted certificate",
            str, "login", hidden=True),
    Setting("AZURE_CLIENT_SECRET", "client_secret", "the secret from: az ad sp create-for-rbac", str, "login",
            hidden=True),
    Setting("AZURE_SUBSCRIPTION_ID", "subscription_id", ZERO_GUID,
            matching(GUID.pattern, "a subscription ID (a GUID)"), "all", True, True),
    Setting("AZURE_RESOURCE_GROUP", "resource_group", "rg-aci-private",
            matching(r"[-\w.()]{0,89}[-\w()]", "a resource group name"), "all", True),
    Setting("AZURE_LOCATION", "location", "westeurope",
            matching(r"[A-Za-z0-9 ]+", "an Azure region name", lambda v: v.replace(" ", "").lower()), required=True),
    Setting("ACI_CONTAINER_GROUP_NAME", "container_group_name", "aci-private-demo",
            matching(r"(?!.*--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", "a valid container group name (1-63 lowercase "
                     "letters, digits and single hyphens, a letter or digit at each end)"), "all", True),
    Setting("ACI_SUBNET_ID", "subnet_id",
            f"{EXAMPLE_GROUP_ID}/Microsoft.Network/virtualNetworks/vnet-aci/subnets/snet-aci",
            resource_id("Microsoft.Network/virtualNetworks/subnets"), required=True, hidden=True),
    Setting("ACI_IDENTITY_ID", "identity_id",
            f"{EXAMPLE_GROUP_ID}/Microsoft.ManagedIdentity/userAssignedIdentities/id-aci-acrpull",
            resource_id("Microsoft.ManagedIdentity/userAssignedIdentities"), required=True, hidden=True),
    Setting("ACI_RESTART_POLICY", "restart_policy", "Always",
            one_of("a restart policy", "Always", "OnFailure", "Never")),
    Setting("ACI_DNS_SERVERS", "dns_servers", "10.0.2.4", ip_list),
    Setting("ACI_SHARED_DIR", "shared_dir", "/shared",
            matching(r"/[^:]*", "an absolute path inside the containers, without a colon (such as /shared)")),
    # The main container's settings; a sidecar's (ACI_SIDECAR_<NAME>_...) and an init container's
    # (ACI_INIT_..., ACI_INIT_<N>_...) are the same with their own prefix.
    Setting("ACI_IMAGE", "image", "acrprivatedemo.azurecr.io/aci-helloworld:latest", registry_image, "container"),
    Setting("ACI_CPU", "cpu", "1", positive_number, "container"),
    Setting("ACI_MEMORY_GB", "memory_in_gb", "1.5", positive_number, "container"),
    Setting("ACI_PORTS", "ports", "80", port_list, "container"),
    Setting("ACI_COMMAND", "command", "python -m http.server 80", command_line, "container"),
    Setting("ACI_INIT_IMAGE", "image", "acrprivatedemo.azurecr.io/migrate:1.0", image_reference, "container"),
    Setting("ACI_INIT_COMMAND", "command", "python migrate.py", command_line, "container"),
    Setting("AZURE_AUTHORITY_HOST", "authority_host", "https://login.microsoftonline.com", https_url, "login"),
    Setting("AZURE_RESOURCE_MANAGER_ENDPOINT", "resource_manager_endpoint", "https://management.azure.com",
            https_url, "login"),
)  # fmt: skip
EXAMPLES = {setting.name: setting.example for setting in SETTINGS}
BY_NAME = {setting.name: setting for setting in SETTINGS}
DEPLOYING = {"all", "deploy", "login"}
SCOPES = {"deploy": DEPLOYING, "recreate": DEPLOYING, "check": DEPLOYING, "dry-run": {"all", "deploy"},
          "delete": {"all", "login"}}  # fmt: skip
# Container settings: what follows the prefix, and the ones only app containers take (ACI gives init
# containers the whole group's CPU and memory, and no ports).
SUFFIXES = ("IMAGE", "CPU", "MEMORY_GB", "PORTS", "COMMAND")
APP_ONLY = {"CPU": "CPU", "MEMORY_GB": "memory", "PORTS": "ports"}
ENV, SECURE_ENV = "ENV_", "SECURE_ENV_"
KNOWN_SUFFIX = rf"(?:{'|'.join(SUFFIXES)}|(?:{SECURE_ENV}|{ENV}).+)"
SIDECAR = re.compile(rf"ACI_SIDECAR_(?P<name>.+?)_(?P<suffix>{KNOWN_SUFFIX})")
NUMBERED_INIT = re.compile(rf"ACI_INIT_(?P<number>\d+)_(?P<suffix>{KNOWN_SUFFIX})")
UNKNOWN_CONTAINER_SETTING = re.compile(r"(ACI_SIDECAR_[A-Za-z0-9]+_|ACI_INIT_\d+_)")


def ours(name: str) -> bool:
    """A variable deploy.py reads."""
    return name in EXAMPLES or name.startswith("ACI_")


def clean(value: str | None) -> str:
    """Whitespace and one pair of quotes pasted around a value are not part of it."""
    value = (value or "").strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1].strip()
    return value


def secrets_in(variables: dict[str, str]) -> set[str]:
    """The values that must never be printed, whatever setting they were pasted into."""
    names = [s.name for s in SETTINGS if s.hidden and s.check is str]
    return {clean(variables[n]) for n in variables if n in names or SECURE_ENV in n} - {""}


def secret_like(value: str, secrets: set[str]) -> bool:
    return value in secrets or bool(SECRET_SHAPE.fullmatch(value) or JWT.fullmatch(value))


def problem_with(name: str, value: str, what: str, hidden: bool, secrets: set[str] = frozenset()) -> str:
    first = re.sub(r"^ACI_SIDECAR_[A-Za-z0-9]+_", "ACI_", re.sub(r"^ACI_INIT_\d+_", "ACI_INIT_", name))
    example = EXAMPLES.get(name) or EXAMPLES.get(first, "")  # a sidecar's, or a later init's: the first's
    example = f"; for example {name}={example}" if example else ""
    if hidden or secret_like(value, secrets):
        shape = f"{len(value)} characters" + ("" if "/" in value or GUID.fullmatch(value) else ", not a GUID")
        return f"{name} (value not shown: {shape}) is not {what}{example}"
    return f"{name}={value!r} is not {what}{example}"


def parsed(name: str, value: str, check: Callable, secrets: set[str], problems: list[str], hidden: bool = False):
    """check(value), or None with the problem noted; a value shaped like a secret passes no check but str's."""
    try:
        if secret_like(value, secrets) and check is not str:
            raise ValueError("a secret or a token, which this setting never is")
        return check(value)
    except ValueError as error:
        problems.append(problem_with(name, value, str(error), hidden, secrets))
        return None


def load_settings(variables: dict[str, str], mode: str = "deploy") -> tuple[Settings, list[str]]:
    """Settings for mode (a key of SCOPES) and warnings, or SettingsError naming every problem at once.
    Reads nothing but the variables given (and whether the credential files named are readable)."""
    problems: list[str] = []
    warnings: list[str] = []
    values: dict = {}
    secrets = secrets_in(variables)
    missing = False
    for setting in (s for s in SETTINGS if s.scope in SCOPES[mode]):
        value = clean(variables.get(setting.name))
        if not value:
            if setting.required:
                problems.append(f"{setting.name} is not set; for example {setting.name}={setting.example}")
                missing = True
            continue
        found = parsed(setting.name, value, setting.check, secrets, problems, setting.hidden)
        if found is not None:
            values[setting.field] = found
    if mode != "delete":
        groups = container_settings(variables, values.get("container_group_name", "app"), problems, secrets)
        missing = missing or "ACI_IMAGE is not set" in " ".join(problems)
        values.update(groups)
        warnings += group_checks(groups, problems)
    if mode != "dry-run":
        missing = sign_in_settings(variables, values, problems, warnings) or missing
    values.pop("token_credentials", None)
    subnet_subscription = parse_resource_id(values.get("subnet_id", "")).get("subscription", "")
    if values.get("subscription_id") and subnet_subscription.lower() not in ("", values["subscription_id"].lower()):
        problems.append("ACI_SUBNET_ID is in another subscription than AZURE_SUBSCRIPTION_ID; the container group and "
                        "its subnet must be in the same subscription")  # fmt: skip
    if problems:
        raise SettingsError(problems, missing)
    return Settings(**values), setting_warnings(variables) + warnings


def environment_settings(variables: dict[str, str], prefix: str, problems: list[str]) -> dict[str, dict[str, str]]:
    """<prefix>ENV_<NAME> and <prefix>SECURE_ENV_<NAME>: a container's environment, plain and secure."""
    found = {}
    for field, kind in (("environment", ENV), ("secure_environment", SECURE_ENV)):
        start = prefix + kind
        found[field] = {key[len(start) :]: variables[key] for key in sorted(variables) if key.startswith(start)}
        for key in found[field]:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                problems.append(
                    f"{start}{key}: {key!r} is not a valid environment variable name "
                    f"(letters, digits and underscores, not starting with a digit); for example {start}APP_MODE"
                )
    for key in sorted(found["environment"].keys() & found["secure_environment"].keys()):
        problems.append(f"{prefix}{ENV}{key} and {prefix}{SECURE_ENV}{key} are both set; keep one of them")
    return found


def container_from(variables: dict[str, str], prefix: str, name: str, problems: list[str], secrets: set[str]):
    """The container whose settings start with prefix (ACI_, ACI_SIDECAR_<NAME>_, ACI_INIT_, ACI_INIT_<N>_);
    None when none is set."""
    init, fields = prefix.startswith("ACI_INIT_"), {}
    for suffix in SUFFIXES:
        key, value = prefix + suffix, clean(variables.get(prefix + suffix))
        if not value:
            continue
        if init and suffix in APP_ONLY:
            problems.append(f"{key} is set, but init containers take no {APP_ONLY[suffix]}: ACI gives them the "
                            "whole group's CPU and memory while they run, and no ports; remove it")  # fmt: skip
            continue
        check = BY_NAME["ACI_" + suffix].check if prefix == "ACI_" or suffix != "IMAGE" else image_reference
        found = parsed(key, value, check, secrets, problems)
        if found is not None:
            fields[BY_NAME["ACI_" + suffix].field] = found
    environment = environment_settings(variables, prefix, problems)
    own = tuple(prefix + suffix for suffix in (*SUFFIXES, ENV, SECURE_ENV))
    given = sorted(key for key in variables if key.startswith(own) and clean(variables[key]))
    if prefix == "ACI_" and "ACI_IMAGE" not in given:
        problems.append(f"ACI_IMAGE is not set; for example ACI_IMAGE={EXAMPLES['ACI_IMAGE']}")
        return None
    if "image" not in fields:
        if given and prefix + "IMAGE" not in given:
            example = EXAMPLES["ACI_INIT_IMAGE" if init else "ACI_IMAGE"]
            problems.append(f"{', '.join(given)} set without {prefix}IMAGE; for example {prefix}IMAGE={example}")
        return None
    if prefix == "ACI_":
        fields["ports"] = fields.get("ports") or (80,)
    return ContainerSettings(name=name, **fields, **environment)


def container_settings(variables: dict[str, str], group_name: str, problems: list[str], secrets: set[str]) -> dict:
    """The app containers (the main one, then the sidecars by name) and the init containers in order."""
    sidecars = sorted({m["name"] for key in variables if (m := SIDECAR.fullmatch(key))})
    numbered = dict(
        sorted({int(m["number"]): m["number"] for key in variables if (m := NUMBERED_INIT.fullmatch(key))}.items())
    )
    for name in (name for name in sidecars if not re.fullmatch(r"[A-Za-z0-9]{1,63}", name)):
        problems.append(f"ACI_SIDECAR_{name}_...: the sidecar name {name!r} must be 1-63 letters and digits; for "
                        "example ACI_SIDECAR_LOGS_IMAGE")  # fmt: skip
    for number in (n for n in numbered if n < 2):
        problems.append(f"ACI_INIT_{number}_...: numbered init containers start at 2; ACI_INIT_IMAGE is the first")
    app = [("ACI_", group_name)] + [(f"ACI_SIDECAR_{n}_", n.lower()) for n in sidecars if n.isalnum()]
    inits = [("ACI_INIT_", "init")] + [(f"ACI_INIT_{text}_", f"init-{n}") for n, text in numbered.items() if n >= 2]
    found = {kind: [c for prefix, name in pairs if (c := container_from(variables, prefix, name, problems, secrets))]
             for kind, pairs in (("containers", app), ("init_containers", inits))}  # fmt: skip
    names = [c.name for c in found["containers"] + found["init_containers"]]
    for name in sorted({name for name in names if names.count(name) > 1}):
        problems.append(f"two containers are named {name!r}: give the sidecar (ACI_SIDECAR_<NAME>_...) another name")
    return {kind: tuple(containers) for kind, containers in found.items()}


def prefix_of(container: ContainerSettings | Container, group_name: str) -> str:
    """The settings prefix of an app container, from its name."""
    return "ACI_" if container.name == group_name else f"ACI_SIDECAR_{container.name.upper()}_"


def group_checks(groups: dict, problems: list[str]) -> list[str]:
    """The rules that span the app containers: ports, the group's CPU and memory, registries. Warnings."""
    containers, warnings = groups["containers"], []
    group_name = containers[0].name if containers else ""
    opened: dict[int, str] = {}
    for container in containers:
        for port in container.ports:
            key = prefix_of(container, group_name) + "PORTS"
            if port in opened:
                problems.append(f"{key}: port {port} is opened by {opened[port]} too; containers in a group share one "
                                "network, so each port can be opened by one container only")  # fmt: skip
            opened.setdefault(port, key)
    if len(opened) > MAX_PORTS:
        keys = ", ".join(dict.fromkeys(opened.values()))
        problems.append(f"{keys}: the group's IP opens every app container's ports, at most {MAX_PORTS} in all "
                        f"({len(opened)} given)")  # fmt: skip
    for port in (port for port in opened if any(port in reserved for reserved in RESERVED_PORTS)):
        warnings.append(f"{opened[port]}: port {port} is on ACI's list of reserved ports; groups that use it can stay "
                        "Waiting")  # fmt: skip
    for suffix, field in (("CPU", "cpu"), ("MEMORY_GB", "memory_in_gb")):
        total = sum(getattr(container, field) for container in containers)
        keys = ", ".join(prefix_of(c, group_name) + suffix for c in containers)
        unit = " GB (memory is in GB, not MB)" if suffix == "MEMORY_GB" else ""
        if total > GROUP_MAXIMUM[suffix]:
            problems.append(f"{keys}: {total:g}{unit} in all is above ACI's maximum of {GROUP_MAXIMUM[suffix]} per "
                            "group (the app containers' requests add up)")  # fmt: skip
        elif total > CAPACITY_WARNING[suffix]:
            limits = f"{CAPACITY_WARNING['CPU']} CPU or {CAPACITY_WARNING['MEMORY_GB']} GB"
            warnings.append(f"{keys}: {total:g} in all; groups above {limits} may fail for lack of capacity in "
                            "the region")  # fmt: skip
    registries = registry_servers([c.image for c in containers + groups["init_containers"]])
    if containers and len(registries) > len(containers):
        problems.append(f"the images come from {len(registries)} registries ({', '.join(registries)}) but "
                        f"the group has {len(containers)} app container(s): Azure refuses more registry credentials "
                        "than containers; import the images into one registry (az acr import)")  # fmt: skip
    return warnings


def setting_warnings(variables: dict[str, str]) -> list[str]:
    """Likely typos: ACI_* names this script does not read, with the closest one it does."""
    known = [name for name in EXAMPLES if name.startswith("ACI_")]
    known += [f"ACI_{init}{kind}<NAME>" for init in ("", "INIT_") for kind in (ENV, SECURE_ENV)]
    warnings = []
    for key in sorted(variables):
        read = key in EXAMPLES or SIDECAR.fullmatch(key) or NUMBERED_INIT.fullmatch(key)
        if not key.startswith("ACI_") or read or re.match(rf"ACI_(INIT_)?(SECURE_)?{ENV}", key):
            continue
        prefix = UNKNOWN_CONTAINER_SETTING.match(key)
        candidates = [prefix[0] + suffix for suffix in SUFFIXES] if prefix else known
        close = difflib.get_close_matches(key, candidates, 1)
        guess = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{key} is not a setting deploy.py reads, so it is ignored{guess}")
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
    if not utf16 and b"\x00" in data:
        raise UsageError(f"the env file {path} looks like UTF-16 without a byte order mark; save it as UTF-8 "
                         "(PowerShell: Set-Content -Encoding utf8)")  # fmt: skip
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")  # utf-8-sig also drops Notepad's byte order mark
    except UnicodeDecodeError as error:
        raise UsageError(
            f"the env file {path} is not UTF-8 text (byte {error.start + 1} is {data[error.start]:#04x}); save it as "
            "UTF-8 (Notepad: Save As, Encoding UTF-8; PowerShell: Set-Content -Encoding utf8)"
        ) from None
    powershell = [n for n, line in enumerate(text.splitlines(), 1) if re.match(r"\s*\$env:\w+\s*=", line, re.I)]
    if powershell:
        raise UsageError(f"the env file {path} has PowerShell lines ($env:NAME=\"value\", line "
                         f"{', '.join(map(str, powershell))}); an env file has NAME=value lines")  # fmt: skip
    return {name: value or "" for name, value in dotenv_values(stream=io.StringIO(text), interpolate=False).items()}


# Variables the libraries read from the environment: a stale one in the shell hides the file's as much.
NETWORK = ("REQUESTS_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def read_variables(args: argparse.Namespace) -> tuple[dict[str, str], bool]:
    """The variables deploy.py sees, the real environment winning over the env file; and whether a file was read."""
    path = args.env_file or ".env"
    from_file = read_env_file(path, named=bool(args.env_file))
    for name in sorted(name for name in from_file if (ours(name) or name in NETWORK) and name in os.environ):
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
    if args.mode != "dry-run":
        say(f"Signing in with {WAYS[settings.sign_in].what}")
    return dataclasses.replace(settings, answer_timeout=min(settings.answer_timeout, args.timeout))


# Sign-in ----------------------------------------------------------------------------------------------
# A way to sign in: what (said once on stderr, before signing in), the settings it needs, and those it
# ignores (warned about, and not passed on).
Way = collections.namedtuple("Way", "what needs ignores", defaults=[()])
# The settings that pick a way by being set (rule 2 of the README's "Sign-in").
PICKED_BY = {"AZURE_FEDERATED_TOKEN_FILE": "federated_token", "AZURE_CLIENT_CERTIFICATE_PATH": "certificate",
             "AZURE_CLIENT_SECRET": "client_secret"}  # fmt: skip
SERVICE_PRINCIPAL = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID")
# az signs in for the subscription's tenant, in the cloud `az cloud set` chose; a managed identity
# has one tenant and gets its tokens from the machine.
NOT_FOR_AZ = ("AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST", "AZURE_CLIENT_ID")
WAYS = {
    "federated_token": Way("a federated token from AZURE_FEDERATED_TOKEN_FILE (WorkloadIdentityCredential)",
                           (*SERVICE_PRINCIPAL, "AZURE_FEDERATED_TOKEN_FILE")),
    "certificate": Way("the service principal's certificate (CertificateCredential)",
                       (*SERVICE_PRINCIPAL, "AZURE_CLIENT_CERTIFICATE_PATH")),
    "client_secret": Way("the service principal's client secret (ClientSecretCredential)",
                         (*SERVICE_PRINCIPAL, "AZURE_CLIENT_SECRET")),
    "azure_cli": Way("the Azure CLI's signed-in account (AzureCliCredential)", (), NOT_FOR_AZ),
    "managed_identity": Way("this machine's managed identity (ManagedIdentityCredential)", (), NOT_FOR_AZ[:2]),
}  # fmt: skip


def choose_way(given: set[str], selector: str, problems: list[str]) -> str:
    """Which way signs in, from the sign-in settings that are set and AZURE_TOKEN_CREDENTIALS (lower-cased)."""
    allowed = TOKEN_CREDENTIALS.get(selector, tuple(PICKED_BY.values()))
    stray = [name for name in PICKED_BY if name in given and PICKED_BY[name] not in allowed]
    if stray:
        problems.append(f"{' and '.join(stray)} set, but AZURE_TOKEN_CREDENTIALS={selector} does not use "
                        f"{'them' if len(stray) > 1 else 'it'}: unset {' and '.join(stray)}, or unset "
                        "AZURE_TOKEN_CREDENTIALS")  # fmt: skip
    picked = [PICKED_BY[name] for name in PICKED_BY if name in given and PICKED_BY[name] in allowed]
    if len(picked) > 1:
        names = [name for name in PICKED_BY if name in given]
        problems.append(f"{', '.join(names)} are all set; keep one of them (each picks a way to sign in)")
    if picked or len(allowed) == 1:
        return picked[0] if picked else allowed[0]
    if selector == "prod":
        return "managed_identity"
    if selector or "AZURE_CLIENT_ID" in given:
        problems.append(
            "AZURE_CLIENT_ID is set, but nothing to sign in with: set AZURE_FEDERATED_TOKEN_FILE, "
            "AZURE_CLIENT_CERTIFICATE_PATH or AZURE_CLIENT_SECRET; or AZURE_TOKEN_CREDENTIALS="
            "ManagedIdentityCredential for this machine's managed identity; or unset AZURE_CLIENT_ID to sign in as "
            "the Azure CLI's account"
            if not selector
            else f"AZURE_TOKEN_CREDENTIALS={selector} needs AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"
        )
    return "azure_cli"


def sign_in_settings(variables: dict[str, str], values: dict, problems: list[str], warnings: list[str]) -> bool:
    """Puts the way into values (sign_in), drops what it ignores; whether a setting it needs is missing."""
    given = {s.name for s in SETTINGS if s.scope == "login" and clean(variables.get(s.name))}
    way = choose_way(given, values.get("token_credentials", "").lower(), problems)
    values["sign_in"] = way
    missing = [name for name in WAYS[way].needs if name not in given]
    for name in missing:
        problems.append(f"{name} is not set; for example {name}={EXAMPLES[name]} (signing in with "
                        f"{WAYS[way].what} needs it)")  # fmt: skip
    for name in (name for name in WAYS[way].ignores if name in given):
        values.pop(BY_NAME[name].field, None)
        warnings.append(f"{name} is set, but {WAYS[way].what} does not use it; it is ignored")
    return bool(missing)


# Progress and summary ---------------------------------------------------------------------------------
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


SEEN: dict = {}  # the group as the wait last read it


def show_progress() -> Callable[[ContainerGroup], None]:
    shown: dict = {}

    def show(group: ContainerGroup) -> None:
        SEEN["group"] = group
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
                if state == "Terminated" and current.exit_code == 0:  # it finished, and Always starts it again
                    detail += "; ACI_RESTART_POLICY=Always restarts it: a run-once job wants Never or OnFailure"
                stopped[container.name] = f"{state}{exit_code}{detail}"
    return "\n".join(lines), stopped


def show_logs(client: ContainerInstanceManagementClient, settings: Settings, stopped: dict[str, str]) -> None:
    group = f"-g {settings.resource_group} -n {settings.container_group_name}"
    for name, state in stopped.items():
        say(f"error: provisioning succeeded, but container {name} is {state}. The end of its log:")
        try:
            content = client.containers.list_logs(
                settings.resource_group, settings.container_group_name, name, tail=LOG_LINES
            ).content
            for line in (content or "(empty)").splitlines()[-LOG_LINES:]:
                say(f"  | {line}")
        except HttpResponseError as error:
            say(f"  (its log cannot be read: {error.error.code if error.error else error.status_code})")
        say(f"  whole log: az container logs {group} --container-name {name}")


# Check ------------------------------------------------------------------------------------------------
# --check reads what the deployment depends on with GET requests only (FACTS.md, "Reading what the
# deployment depends on") and names what is wrong: each read is a row of READS, each verdict a row of RULES.
CONTAINER_GROUPS = "Microsoft.ContainerInstance/containerGroups"
CLASSIC, ABAC = "LegacyRegistryPermissions", "AbacRepositoryPermissions"  # a registry's roleAssignmentMode
DATA_READER = {"577a9874-89fd-4f24-9dbd-b5034d0ad23a": "Container Registry Data Importer and Data Reader"}
# The built-in roles that let an identity pull, by mode (docs: ACR built-in roles; in ABAC mode AcrPull,
# Owner, Contributor and Reader are not honoured), and what a custom role must allow instead.
PULL_ROLES = {
    CLASSIC: {"7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull", "8311e382-0749-4cb8-b61a-304f252e45ec": "AcrPush",
              "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner", "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
              "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader", **DATA_READER},
    ABAC: {"b93aa761-3e63-49ed-ac28-beffa264f7ac": "Container Registry Repository Reader",
           "2a1e307c-b015-4ebd-883e-5b7698a07328": "Container Registry Repository Writer",
           "2efddaa5-3f1f-4df3-97df-af3f13818f4c": "Container Registry Repository Contributor", **DATA_READER},
}  # fmt: skip
PULL_PERMISSION = {CLASSIC: ("actions", "notActions", "Microsoft.ContainerRegistry/registries/pull/read"),
                   ABAC: ("dataActions", "notDataActions",
                          "Microsoft.ContainerRegistry/registries/repositories/content/read")}  # fmt: skip
FRESH_MINUTES = 30  # docs: a role assignment can take up to 30 minutes to apply


class Skipped(Exception):
    """A read that got no JSON: why; the HTTP status, if any (404: the resource does not exist); for a 403, the
    action that was refused."""

    def __init__(self, why: str, status: int = 0, action: str = ""):
        super().__init__(why)
        self.status, self.action = status, action


def arm_reader(settings: Settings) -> Callable[..., dict]:
    """get(path or next link, *api_versions, **query): a GET's JSON, trying the next api-version when the cloud
    lacks one. A pipeline of its own: the SDK client's would register the provider by POSTing on a 409."""
    endpoint = settings.resource_manager_endpoint.rstrip("/")
    sign_in = ARMChallengeAuthenticationPolicy(create_credential(settings), *arm_scopes(endpoint))
    retry = RetryPolicy(retry_total=2, timeout=min(settings.answer_timeout, 30))
    policies = [UserAgentPolicy("deploy.py"), retry, sign_in, ARMHttpLoggingPolicy()]
    pipeline = ARMPipelineClient(endpoint, policies=policies)

    def get(path: str, *versions: str, **query: str) -> dict:
        for version in versions:
            request = HttpRequest("GET", path) if path.startswith("https://") else HttpRequest(
                "GET", endpoint + path, params={"api-version": version, **query})  # fmt: skip
            try:
                response = pipeline.send_request(request, connection_timeout=5, read_timeout=15)
            except (ServiceRequestError, ServiceResponseError) as error:
                raise Skipped(f"no answer from {urlsplit(endpoint).netloc} ({error.message})") from None
            status, body = response.status_code, json.loads(response.text() or "{}")
            error = body.get("error") or {} if isinstance(body, dict) else {}
            if status == 200:
                return body
            if status == 400 and error.get("code") == "NoRegisteredProviderFound" and version != versions[-1]:
                continue  # this cloud lacks the api-version: the next one
            if status == 401:
                raise ClientAuthenticationError(response=response)
            action = re.search(r"action '([^']+)'", error.get("message", "")) if status == 403 else None
            why = "not allowed to read it" if status == 403 else error.get("message", "")
            message = f"{status} {error.get('code', '')}" + (f": {why}" if why else "")
            raise Skipped(message, status, action[1] if action else "")

    return get


def subnet_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    subnet = get(settings.subnet_id, "2024-05-01")["properties"]  # keys that are unused are absent (recordings)
    kinds = {"ipConfigurations": "IP configurations (NICs)", "privateEndpoints": "private endpoints",
             "resourceNavigationLinks": "resource links"}  # fmt: skip
    held = [f"{len(subnet[key])} {what}" for key, what in kinds.items() if subnet.get(key)]
    held += [f"a {link['properties'].get('linkedResourceType')} link" for link in subnet.get("serviceAssociationLinks")
             or [] if link["properties"].get("linkedResourceType") != CONTAINER_GROUPS]  # fmt: skip
    services = [delegation["properties"]["serviceName"] for delegation in subnet.get("delegations") or []]
    prefixes = subnet.get("addressPrefixes") or [subnet.get("addressPrefix", "0.0.0.0/0")]
    nat = (subnet.get("natGateway") or {}).get("id", "").rsplit("/", 1)[-1]
    return {"services": services, "others": ", ".join(s for s in services if s != CONTAINER_GROUPS),
            "held": ", ".join(held), "size": min(ipaddress.ip_network(p, strict=False).prefixlen for p in prefixes),
            "nat": nat, "outbound": f", outbound through NAT gateway {nat}" if nat else ""}  # fmt: skip


def network_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    return {"location": get(re.split("/subnets/", settings.subnet_id, flags=re.I)[0], "2024-05-01")["location"]}


def identity_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    identity = get(settings.identity_id, "2024-11-30", "2023-01-31")  # isolationScope is new in 2024-11-30
    properties = identity["properties"]
    return {"principal": properties["principalId"], "location": identity["location"],
            "isolation": properties.get("isolationScope", "None")}  # fmt: skip


LISTING = threading.Lock()  # the registry checks search the same lists: each is read once


def list_registries(get: Callable, scope: str, into: dict) -> str:
    """Adds every registry in scope to into, by login server; why the list could not be read, or ""."""
    page: dict = {"nextLink": f"{scope}/providers/Microsoft.ContainerRegistry/registries"}
    try:
        while page.get("nextLink"):
            page = get(page["nextLink"], "2025-11-01", "2023-07-01")
            into.update({r["properties"].get("loginServer", "").lower(): r for r in page.get("value") or []})
    except Skipped as error:  # 409 MissingSubscriptionRegistration: no registry there
        return str(error)
    return ""


def registry_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    """Only the login server is known: look for it in the group's registries, then the subscription's."""
    subscription = f"/subscriptions/{settings.subscription_id}"
    with LISTING:
        registries, listed = found.setdefault("registries", {}), found.setdefault("listed", {})
        for scope in (f"{subscription}/resourceGroups/{settings.resource_group}", subscription):
            if host not in registries and scope not in listed:
                listed[scope] = list_registries(get, scope, registries)
        registry = registries.get(host)
        unread = "; ".join(f"{scope}: {why}" for scope, why in listed.items() if why)
    if registry is None:
        raise Skipped(f"not found in resource group {settings.resource_group} nor in the subscription"
                      f"{f' (could not list {unread})' if unread else ''}; it may be elsewhere or unreadable; check "
                      f"it by hand: az acr show --name {host.split('.')[0]}")  # fmt: skip
    properties, rules = registry["properties"], registry["properties"].get("networkRuleSet") or {}  # Basic: none
    locked = properties.get("publicNetworkAccess") == "Disabled" or rules.get("defaultAction") == "Deny"
    mode = properties.get("roleAssignmentMode") or CLASSIC  # absent before 2025-11-01
    return {"id": registry["id"], "name": registry["name"], "sku": registry["sku"]["name"], "locked": locked,
            "bypass": properties.get("networkRuleBypassOptions", "AzureServices"), "mode": mode,
            "modes": "ABAC (repository permissions)" if mode == ABAC else "classic",
            "access": "public access denied, trusted Microsoft services allowed" if locked else
            "public access allowed"}  # fmt: skip


def pulls(get: Callable, role_id: str, guid: str, mode: str) -> str:
    """The name of the role, if it lets the identity pull in this mode; a custom role by its permissions."""
    if any(guid in roles for roles in PULL_ROLES.values()):  # built in: by its GUID
        return PULL_ROLES[mode].get(guid, "")
    try:
        role = get(role_id, "2022-04-01")["properties"]
    except Skipped:
        return ""
    allowed, denied, needed = PULL_PERMISSION[mode]
    allows = [p for p in role.get("permissions") or [] if any(fnmatch.fnmatch(needed, a) for a in p.get(allowed) or [])
              and not any(fnmatch.fnmatch(needed, n) for n in p.get(denied) or [])]  # fmt: skip
    return role.get("roleName", guid) if allows else ""


def role_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    identity, registry = found.get(("identity", "")), found.get(("registry", host))
    if not isinstance(identity, dict) or not isinstance(registry, dict):
        raise Skipped("needs the identity's principal ID and the registry, which could not be read")
    principal, mode = identity["principal"], registry["mode"]
    where = f"atScope() and assignedTo('{principal}')"  # at the registry and above, groups' grants included
    path = registry["id"] + "/providers/Microsoft.Authorization/roleAssignments"
    listed = get(path, "2022-04-01", **{"$filter": where})
    now, pulling, ignored = datetime.datetime.now(datetime.timezone.utc), [], []
    for assignment in listed.get("value") or []:
        properties = assignment["properties"]
        if not (registry["id"] + "/").lower().startswith(properties["scope"].rstrip("/").lower() + "/"):
            continue  # below the registry, or elsewhere
        role_id = properties["roleDefinitionId"]  # qualified by subscription: compare the GUID
        guid = role_id.rsplit("/", 1)[-1].lower()
        name = pulls(get, role_id, guid, mode)
        created = isodate.parse_datetime(properties.get("createdOn") or "2000-01-01T00:00:00Z")  # 7 digits: 3.10
        pulling += [(name, int((now - created).total_seconds() // 60))] if name else []
        ignored += [PULL_ROLES[CLASSIC][guid]] if mode == ABAC and guid in PULL_ROLES[CLASSIC] else []
    age = max((minutes for _, minutes in pulling), default=0)
    return {"principal": principal, "registry_id": registry["id"], "registry": registry["name"],
            "modes": registry["modes"],
            "pulling": ", ".join(sorted({name for name, _ in pulling})), "age": age, "fresh": age < FRESH_MINUTES,
            "role": "Container Registry Repository Reader" if mode == ABAC else "AcrPull",
            "ignored": f" ({', '.join(ignored)} is assigned, but ABAC mode ignores it)" if ignored else ""}  # fmt: skip


def group_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    path = f"/subscriptions/{settings.subscription_id}/resourceGroups/{settings.resource_group}/providers/"
    live = ContainerGroup.deserialize(get(path + f"{CONTAINER_GROUPS}/{settings.container_group_name}", "2023-05-01"))
    return {"provisioning": live.provisioning_state, "state": live.instance_view.state if live.instance_view else
            "unknown", "changed": ", ".join(changed_settings(live, settings))}  # fmt: skip


def provider_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    provider = get(f"/subscriptions/{settings.subscription_id}/providers/Microsoft.ContainerInstance", "2021-04-01")
    return {"registration": provider.get("registrationState", "unknown")}


Read = collections.namedtuple("Read", "facts label ok missing reader")
DELEGATE = "az network vnet subnet update --ids {subnet_id} --delegations " + CONTAINER_GROUPS
NEW_SUBNET = ("az network vnet subnet create -g {vnet_group} --vnet-name {vnet} -n snet-aci --address-prefixes "
              "<a free range, /28 or larger> --delegations " + CONTAINER_GROUPS)  # fmt: skip
# check: what it reads, its line's label, its ok text, (verdict, text, fix) when it does not exist, and the
# read-only role that lets a deployer read it. One line each, in this order.
READS = {
    "subnet": Read(subnet_facts, "subnet {subnet}", "delegated to container groups only, nothing else in it, "
                   "/{size}{outbound}", ("problem", "does not exist", NEW_SUBNET), "Reader on virtual network {vnet}"),
    "network": Read(network_facts, "virtual network {vnet}", "in {location}, as AZURE_LOCATION",
                    ("problem", "does not exist", "az network vnet create -g {vnet_group} -n {vnet} -l {wanted}"),
                    "Reader on virtual network {vnet}"),
    "identity": Read(identity_facts, "identity {identity}", "principal ID {principal}",
                     ("problem", "does not exist", "az identity create -g {identity_group} -n {identity} -l {wanted}"),
                     "Reader (or Managed Identity Operator) on identity {identity}"),
    "registry": Read(registry_facts, "registry {host}", "{sku}, {access}, {modes} role assignments",
                     ("skipped", "not found", ""), "Reader on the registry's resource group or the subscription"),
    "pull role": Read(role_facts, "pull role on {host}", "the identity has {pulling}", ("skipped", "not found", ""),
                      "Reader on the registry"),
    "container group": Read(group_facts, "container group {group}", "exists (provisioning {provisioning}, state "
                            "{state}); python deploy.py updates it in place",
                            ("ok", "does not exist yet; python deploy.py creates it", ""),
                            "Reader on resource group {rg}"),
    "provider": Read(provider_facts, "provider Microsoft.ContainerInstance", "registered in the subscription",
                     ("problem", "not found", ""), "Reader on the subscription"),
}  # fmt: skip
PER_REGISTRY = ("registry", "pull role")  # one line for each registry an image names
LATER = ("pull role",)  # needs the facts of other checks (the identity's principal, the registry's ID)
# check, verdict, when (on the read's facts and the names of what the settings say), text, fix.
RULES = (
    ("subnet", "problem", lambda f: CONTAINER_GROUPS not in f["services"], "is not delegated to container groups",
     DELEGATE),
    ("subnet", "problem", lambda f: f["others"], "is delegated to {others} too; ACI needs it delegated to container "
     "groups only", DELEGATE),
    ("subnet", "problem", lambda f: f["held"], "holds {held}: a subnet for container groups can hold nothing else (a "
     "registry's private endpoint there makes the deployment fail); give the groups a subnet of their own", NEW_SUBNET),
    ("subnet", "warning", lambda f: f["size"] >= 29, "is a /{size}: ACI's documentation asks for /28 or larger", ""),
    ("subnet", "warning", lambda f: not f["nat"], "has no NAT gateway: the containers have no supported way out to "
     "the internet (nothing to do if they need none)", ""),
    ("network", "problem", lambda f: f["location"] != f["wanted"], "is in {location}, but AZURE_LOCATION is {wanted}: "
     "a group goes in its network's region", "set AZURE_LOCATION={location}, or use a subnet in {wanted}"),
    ("identity", "problem", lambda f: f["isolation"] == "Regional" and f["location"] != f["wanted"], "has isolation "
     "scope Regional in {location}: it can be attached only in {location}, not {wanted}", "use an identity in "
     "{wanted}, or one whose isolation scope is None"),
    ("registry", "warning", lambda f: f["sku"] != "Premium", "is {sku}: pulls can work, but network rules and "
     "private endpoints need Premium", "az acr update --name {name} --sku Premium"),
    ("registry", "problem", lambda f: f["locked"] and f["bypass"] != "AzureServices", "denies public access and does "
     "not let trusted Microsoft services in, so ACI cannot pull",
     "az acr update --name {name} --allow-trusted-services true"),
    ("pull role", "problem", lambda f: not f["pulling"], "the identity (principal {principal}) has no role that pulls "
     "from {registry} in {modes} mode{ignored}", "az role assignment create --assignee-object-id {principal} "
     "--assignee-principal-type ServicePrincipal --role \"{role}\" --scope {registry_id}"),
    ("pull role", "warning", lambda f: f["pulling"] and f["fresh"], "{pulling} was assigned {age} minutes ago: a role "
     "assignment can take up to 30 minutes to apply; run again after that", ""),
    ("container group", "warning", lambda f: f["changed"], "exists, and Azure cannot change these in place: "
     "{changed}", "python deploy.py --recreate"),
    ("provider", "problem", lambda f: f["registration"] != "Registered", "is {registration} in this subscription",
     "az provider register --namespace Microsoft.ContainerInstance"),
)  # fmt: skip
# After a failed deployment, the checks that bear on its error code or event.
BEARING = {"InaccessibleImage": ("identity", "registry", "pull role"), "Failed": ("identity", "registry", "pull role"),
           "SubnetMissingRequiredDelegation": ("subnet", "network"), "InvalidSubnetId": ("subnet", "network"),
           "Waiting": ("subnet", "network")}  # fmt: skip
NEW_GROUP_NEEDS = ("subnet", "network", "identity", "registry", "pull role")  # read before --recreate deletes


def run_checks(get: Callable, settings: Settings, checks=tuple(READS), verbose: bool = False) -> list[tuple]:
    """(verdict, label, text, fix) for each check named, in READS' order. The first read signs in alone;
    then the ones that need nothing else run at the same time, and the pull roles last."""
    hosts = registry_servers([c.image for c in settings.containers + settings.init_containers])
    jobs = [(check, host) for check in READS if check in checks for host in (hosts if check in PER_REGISTRY else [""])]
    subnet, identity = parse_resource_id(settings.subnet_id), parse_resource_id(settings.identity_id)
    names = {"subnet": subnet.get("child_name_1", ""), "vnet": subnet.get("name", ""), "subnet_id": settings.subnet_id,
             "vnet_group": subnet.get("resource_group", ""), "identity": identity.get("name", ""),
             "identity_group": identity.get("resource_group", ""), "group": settings.container_group_name,
             "rg": settings.resource_group, "wanted": settings.location}  # fmt: skip
    found: dict = {}

    def read(job: tuple[str, str]) -> None:
        started = time.monotonic()
        try:
            found[job] = READS[job[0]].facts(get, settings, job[1], found)
        except Skipped as error:
            found[job] = error
        except (KeyError, TypeError, ValueError) as error:  # not JSON, or not the shape Azure answers with
            found[job] = Skipped(f"an answer deploy.py cannot read ({type(error).__name__}: {error})")
        if verbose:
            say(f"  {READS[job[0]].label.format(**names, host=job[1])}: read in {time.monotonic() - started:.2f} s")

    with ThreadPoolExecutor(max_workers=4) as pool:
        for stage in (jobs[:1], [j for j in jobs[1:] if j[0] not in LATER], [j for j in jobs[1:] if j[0] in LATER]):
            list(pool.map(read, stage))
    return [line for job in jobs for line in verdicts(job[0], found[job], {**names, "host": job[1]})]


def verdicts(check: str, facts: dict | Skipped, names: dict) -> list[tuple[str, str, str, str]]:
    read = READS[check]
    label = read.label.format(**names)
    if isinstance(facts, Skipped) and facts.status == 404:  # from a place it may read: it does not exist
        verdict, text, fix = read.missing
        return [(verdict, label, text, fix.format(**names))]
    if isinstance(facts, Skipped):
        custom = f", or a custom role with {facts.action}" if facts.action else ""
        role = (
            f"; the read-only role that lets it run: {read.reader.format(**names)}{custom}"
            if facts.status == 403
            else ""
        )
        return [("skipped", label, f"{facts}{role}", "")]
    facts = {**names, **facts}
    found = [(verdict, label, text.format(**facts), fix.format(**facts)) for name, verdict, when, text, fix in RULES
             if name == check and when(facts)]  # fmt: skip
    return found or [("ok", label, read.ok.format(**facts), "")]


def finding_lines(findings: list[tuple], settings: Settings, args: argparse.Namespace) -> list[str]:
    lines = []
    for verdict, label, text, fix in findings:
        lines += [f"{verdict:<8} {label}: {text}"] + ([f"         fix: {filled(fix, settings, args)}"] if fix else [])
    return lines


def check(get: Callable, settings: Settings, args: argparse.Namespace) -> int:
    """--check: every line to stdout, then the counts; 1 when any check found a problem."""
    say("Checking what the deployment depends on (GET requests only) ...")
    findings = run_checks(get, settings, verbose=args.verbose)
    print("\n".join(finding_lines(findings, settings, args)))
    counts = collections.Counter(verdict for verdict, *_ in findings)
    plural = {"ok": "ok", "warning": "warnings", "problem": "problems", "skipped": "skipped"}
    print(", ".join(f"{counts[v]} {v if counts[v] == 1 else many}" for v, many in plural.items()))
    return 1 if counts["problem"] else 0


def explain(causes: list[str], settings: Settings, args: argparse.Namespace) -> None:
    """After a failed deployment: the checks that bear on its cause, printed under the error."""
    checks = next((BEARING[cause] for cause in causes if cause in BEARING), ())
    try:
        findings = run_checks(arm_reader(settings), settings, checks) if checks else []
    except (HttpResponseError, ValueError) as error:  # signing in again failed: the error above stands alone
        findings = [("skipped", "checks", f"could not sign in to read them ({error})", "")]
    except KeyboardInterrupt:  # Ctrl-C while reading: the error above is the answer
        return
    if findings:
        say(f"What deploy.py read about it ({command(args, '--check')} checks everything):")
        for line in finding_lines(findings, settings, args):
            say("  " + line)


# Hints ------------------------------------------------------------------------------------------------
PULL_HINT = (
    "check that the image exists in the registry, that ACI_IDENTITY_ID has AcrPull on the registry (a new role "
    "assignment can take up to 30 minutes to apply; on an ABAC registry it needs Container Registry Repository "
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
FEDERATED = (
    "check the federated credential on the app registration (az ad app federated-credential list --id "
    "<AZURE_CLIENT_ID>): its issuer, subject and audience must equal the token's iss, sub and aud exactly"
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
    "MoreImageRegistryCredentialsThanContainers": "each Azure registry an image comes from gets a credential, and a "
    "group may not have more credentials than app containers: import the images into one registry (az acr import)",
    "PrincipalNotFound": "the identity or service principal was created moments ago and has not reached every "
    "region yet; wait a minute or two and run again",
    "LinkedAuthorizationFailed": "the deploying principal also needs Microsoft.Network/virtualNetworks/subnets/"
    "join/action on the subnet (Network Contributor) and Managed Identity Operator on the identity",
    "AuthorizationFailed": "the deploying principal needs a role that allows Microsoft.ContainerInstance/"
    "containerGroups/write on the resource group, e.g. az role assignment create --assignee-object-id <object ID> "
    "--assignee-principal-type ServicePrincipal --role Contributor --scope <resource group ID>; if you granted it "
    "in the last minutes, wait and run again: role assignments take up to 30 minutes to apply",
    "SubnetMissingRequiredDelegation": "delegate the subnet to container groups: az network vnet subnet update "
    "--ids <ACI_SUBNET_ID> --delegations Microsoft.ContainerInstance/containerGroups",
    "InvalidSubnetId": "ACI_SUBNET_ID must be an existing subnet: az network vnet subnet show -g <group> "
    "--vnet-name <vnet> -n <subnet> --query id -o tsv",
    "LinkedInvalidPropertyId": "an ID in the request is malformed (not a full resource ID from /subscriptions/); "
    "copy ACI_SUBNET_ID and ACI_IDENTITY_ID again with az ... --query id -o tsv",
    "MissingSubscriptionRegistration": "register the provider, then run again once it shows Registered: "
    "az provider register --namespace Microsoft.ContainerInstance",
    "ServiceAssociationLinkNotReady": "another deployment into this subnet is still in progress; wait a minute "
    "and run again (one deployment per subnet at a time)",
    "ContainerGroupTransitioning": "the group is still changing from an earlier request; wait a minute and run again",
    "InvalidContainerGroupUpdate": "Azure cannot change the OS type, CPU, memory, restart policy or subnet of a "
    "group in place: python deploy.py --recreate, or python deploy.py --delete and then python deploy.py",
    "ServiceUnavailable": CAPACITY_HINT,
    "ContainerGroupQuotaReached": "the subscription's container group quota in this region is used up (the "
    "message names the quota): delete groups you no longer need (az container list -o table), or ask for more "
    "with a quota request in the portal (Quotas, Azure Container Instances)",
    "ResourceGroupNotFound": "create the resource group or fix AZURE_RESOURCE_GROUP: "
    "az group create -n <group> -l <region>",
    "InvalidAuthenticationToken": "ARM refused the token; sign in again, and check AZURE_RESOURCE_MANAGER_ENDPOINT "
    "and the tenant",
    "InvalidAuthenticationTokenTenant": "the principal signed in to another tenant than the subscription's: set "
    "AZURE_TENANT_ID to the subscription's tenant (az account show --subscription <AZURE_SUBSCRIPTION_ID> --query "
    "tenantId -o tsv)",
    "InvalidAuthenticationTokenAudience": "the token is for another cloud or endpoint: AZURE_RESOURCE_MANAGER_ENDPOINT "
    "must be the ARM endpoint of the cloud you sign in to (https://management.azure.com for Azure)",
    "AADSTS7000215": "AZURE_CLIENT_SECRET is not the secret's value (the secret's ID is not it); make a new one: "
    "az ad sp credential reset --id <AZURE_CLIENT_ID>" + NEW_PRINCIPAL,
    "AADSTS7000222": "the client secret has expired; make a new one: az ad sp credential reset --id "
    "<AZURE_CLIENT_ID>, or sign in without a secret (README: Deploy from CI without a secret)",
    "AADSTS700213": "no federated credential has the token's subject; " + FEDERATED + " (subjects are case-sensitive)",
    "AADSTS7002138": "the token's subject matches a federated credential only if case is ignored, and subjects are "
    "case-sensitive; " + FEDERATED,
    "AADSTS700211": "no federated credential has the token's issuer; " + FEDERATED,
    "AADSTS700212": "no federated credential has the token's audience (api://AzureADTokenExchange); " + FEDERATED,
    "AADSTS700024": "the federated token has expired (GitHub's last about 5 minutes): write AZURE_FEDERATED_TOKEN_FILE "
    "just before deploy.py runs",
    "AADSTS700027": "the certificate is not registered on the app; add it: "
    "az ad app credential reset --id <AZURE_CLIENT_ID> --cert @<certificate.pem> --append",
    "AADSTS700016": "AZURE_CLIENT_ID is not an application in tenant AZURE_TENANT_ID; check both: "
    "az ad sp show --id <AZURE_CLIENT_ID>" + NEW_PRINCIPAL,
    "AADSTS90002": "tenant AZURE_TENANT_ID does not exist; look it up: az account show --query tenantId -o tsv",
}
# For errors without a code (the Azure CLI's, a managed identity's), and messages that change a code's meaning.
MESSAGE_HINTS = {
    "Azure CLI not found on path": "install the Azure CLI (https://aka.ms/azcli) and run az login, or sign in "
    "another way (README: Sign-in)",
    "az login": "the Azure CLI is not signed in: run az login (add --tenant <tenant ID> for the subscription's "
    "tenant), then az account show",
    "Subscription '": "the Azure CLI is signed in, but not to a tenant that has subscription <AZURE_SUBSCRIPTION_ID>: "
    "az login --tenant <the subscription's tenant ID>, or check it with az account list -o table",
    "Failed to invoke the Azure CLI": "az did not answer within 10 seconds; run az account get-access-token once "
    "(it may be updating or asking for input), then try again",
    "Identity not found": "this machine has no managed identity with client ID <AZURE_CLIENT_ID>: assign the identity "
    "to the VM or agent, or unset AZURE_CLIENT_ID for its system-assigned identity",
    "IMDS endpoint": "no managed identity endpoint answered: ManagedIdentityCredential works only on an Azure "
    "machine (VM, scale set, agent) that has an identity",
    # The documented cause is groups of one name deployed in several regions at once; another region is no fix.
    "quota 'ContainerGroups' exceeded": "Azure saw groups of this name being deployed in several regions at once: "
    "deploy one at a time, in one region, then run again",
}
# Where a failed deployment's cause is a Warning event, by the event's name (without a trailing period).
EVENT_HINTS = {"InsufficientCapacity": CAPACITY_HINT, "Failed": PULL_HINT}
# Events the platform itself writes while a node starts: named Failed, yet no sign of a pull problem.
PLATFORM_EVENTS = ("CriContainerActivator is getting initialized",)


def event_names(events: list) -> list[str]:
    """The names of a failed deployment's Warning events (owner, event) that may say why, without a trailing period."""
    return [e.name.rstrip(".") for _, e in events if not any(p in (e.message or "") for p in PLATFORM_EVENTS)]


def error_code(error: HttpResponseError) -> str:
    """Azure's error code; for Entra ID, the AADSTS code in the message."""
    if error.error and error.error.code:
        return error.error.code
    found = re.search(r"AADSTS\d+", error.message or "")
    if found:
        return found[0]
    # MSAL reports an unknown tenant (AADSTS90002 in the discovery document) without the code.
    return "AADSTS90002" if "Unable to get authority configuration" in (error.message or "") else ""


def filled(hint: str, settings: Settings, args: argparse.Namespace) -> str:
    """A hint with what deploy.py knows put in: the command line as it was typed, names and IDs."""
    image = settings.containers[0].image if settings.containers else "<registry>."
    group_id = f"/subscriptions/{settings.subscription_id}/resourceGroups/{settings.resource_group}"
    known = {"python deploy.py": command(args), "<registry>": image.split(".", 1)[0],
             "<group>": settings.resource_group, "<resource group ID>": group_id,
             "<AZURE_SUBSCRIPTION_ID>": settings.subscription_id, "<AZURE_CLIENT_ID>": settings.client_id,
             "<ACI_SUBNET_ID>": settings.subnet_id}  # fmt: skip
    for placeholder, value in known.items():
        hint = hint.replace(placeholder, value or placeholder)
    return hint


def report_error(error: HttpResponseError, settings: Settings, args: argparse.Namespace, details: list[str] = (),
                 events: list = ()) -> None:  # fmt: skip
    """The Azure error code and message, details and Warning events, and a hint."""
    code = error_code(error)
    message = error.error.message if error.error and error.error.message else error.message
    say(f"error: {error.error.code}: {message}" if error.error and error.error.code else f"error: {message}")
    for line in details:
        say(f"  {line}")
    for owner, event in events:
        say(f"  {owner}: {event.name}: {event.message}")
    hint = next((EVENT_HINTS[name] for name in event_names(events) if name in EVENT_HINTS), None)
    hint = hint or next((hint for phrase, hint in MESSAGE_HINTS.items() if phrase in (message or "")), None)
    hint = hint or HINTS.get(code)
    if hint:
        say(f"hint: {filled(hint, settings, args)}")


def warning_events(client: ContainerInstanceManagementClient, settings: Settings) -> list:
    """The Warning events of a group whose provisioning failed, (owner, event) in time order: they say why."""
    group = client.container_groups.get(settings.resource_group, settings.container_group_name)
    return [
        (owner, event) for owner, view in instance_views(group) for event in in_time_order(view.events)
        if event.type == "Warning"
    ]  # fmt: skip


def changed_settings(live: ContainerGroup, settings: Settings) -> list[str]:
    """The settings Azure cannot change in place whose live value differs, as NAME: live -> wanted."""

    def fixed(group: ContainerGroup) -> dict[str, str]:
        found = {}
        for container in group.containers:  # CPU and memory per app container, named by its settings prefix
            prefix, requests = prefix_of(container, settings.container_group_name), container.resources.requests
            found.update({prefix + "CPU": f"{requests.cpu:g}", prefix + "MEMORY_GB": f"{requests.memory_in_gb:g}"})
        return {
            **found,
            "ACI_RESTART_POLICY": group.restart_policy or "Always",
            "ACI_SUBNET_ID": ", ".join(subnet.id for subnet in group.subnet_ids or []) or "none",
            "OS type": group.os_type,
        }

    was, wanted = fixed(live), fixed(build_container_group(settings))
    return [f"{name}: {was[name]} -> {wanted[name]}" for name in wanted if was.get(name, wanted[name]).lower()
            != wanted[name].lower()]  # fmt: skip


def unreachable(error: BaseException | None) -> ServiceRequestError | ServiceResponseError | None:
    """The network failure behind an error (a sign-in failure wraps it), if any."""
    while error is not None and not isinstance(error, ServiceRequestError | ServiceResponseError):
        error = error.__cause__ or error.__context__
    return error


def report_unreachable(error: ServiceRequestError | ServiceResponseError, url: str) -> None:
    host = urlsplit(url).netloc
    say(f"error: could not reach {host} ({error.message})")
    if "CERTIFICATE_VERIFY_FAILED" in error.message:
        bundle = os.environ.get("REQUESTS_CA_BUNDLE")
        now = f" (it names {bundle}, which does not hold that CA)" if bundle else ": export REQUESTS_CA_BUNDLE=ca.pem"
        say(f"hint: Python does not trust the TLS certificate of {host}; behind a TLS-inspecting proxy, point "
            f"REQUESTS_CA_BUNDLE at a PEM file with its CA{now}")  # fmt: skip
    else:
        say(f"hint: check the network, DNS, any proxy (HTTPS_PROXY) and the endpoint settings for {host}")


# Main -------------------------------------------------------------------------------------------------
SENT: set[str] = set()  # the methods azure-core's HTTP logging policy saw go out (a PUT: Azure has it)


def command(args: argparse.Namespace, *flags: str) -> str:
    """This command line as it was typed (interpreter, script, --env-file) with other flags, for hints."""
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd() + os.sep) else sys.executable
    env_file = ("--env-file", args.env_file) if args.env_file else ()
    return shlex.join([python, sys.argv[0], *env_file, *flags])


def still_exists(settings: Settings, args: argparse.Namespace, what: str = "still exists in Azure") -> None:
    group = f"-g {settings.resource_group} -n {settings.container_group_name}"
    say(f"The container group {what} (billed while its containers run). Check it:")
    say(f'  az container show {group} --query "{{provisioning: provisioningState, state: instanceView.state}}"')
    say(f"Fix the cause and run {command(args, '--recreate')}; or delete it:\n  {command(args, '--delete')}"
        f"   (or: az container delete {group} --yes)")  # fmt: skip


def dry_run_body(settings: Settings) -> dict:
    """The exact JSON that ARM would receive, secure values replaced by a placeholder."""

    def masked(containers: tuple[ContainerSettings, ...]) -> tuple[ContainerSettings, ...]:
        hidden = [dict.fromkeys(c.secure_environment, SECURE_PLACEHOLDER) for c in containers]
        return tuple(dataclasses.replace(c, secure_environment=h) for c, h in zip(containers, hidden, strict=True))

    hidden = {"containers": masked(settings.containers), "init_containers": masked(settings.init_containers)}
    return build_container_group(dataclasses.replace(settings, **hidden)).serialize()


def connect(settings: Settings, make: Callable = create_client):
    """The ARM client (or --check's reader), with a certificate that cannot be used as a usage error."""
    try:
        return make(settings)
    except ValueError as error:  # a certificate that cannot be loaded (wrong password, no private key)
        name = "AZURE_CLIENT_CERTIFICATE_PATH" if settings.sign_in == "certificate" else "the sign-in settings"
        raise UsageError(f"{name} cannot be used: {error} (nothing was sent to Azure)") from None


def restarts(group: ContainerGroup) -> dict[str, int]:
    return {c.name: (c.instance_view.restart_count or 0) if c.instance_view else 0 for c in group.containers}


def settle(client: ContainerInstanceManagementClient, settings: Settings, group: ContainerGroup, seconds: float,
           show: Callable[[ContainerGroup], None]):  # fmt: skip
    """Watch the containers for seconds after Succeeded, which only means that they got to Running once:
    the group as last read, and the containers that restarted meanwhile (name: what happened)."""
    before, deadline = restarts(group), time.monotonic() + seconds
    finished = ("Succeeded", "Failed", "Stopped")  # a run-once group whose containers are done
    while time.monotonic() < deadline and not summary(group)[1]:
        if group.instance_view and group.instance_view.state in finished:
            break
        time.sleep(max(0.0, min(PROGRESS_SECONDS, deadline - time.monotonic())))
        group = client.container_groups.get(settings.resource_group, settings.container_group_name)
        show(group)
        grew = {name: f"restarting: {before[name]} -> {n} restarts during --settle"
                for name, n in restarts(group).items() if n > before.get(name, n)}  # fmt: skip
        if grew:
            return group, grew
    return group, {}


def deploy(client: ContainerInstanceManagementClient, settings: Settings, args: argparse.Namespace) -> int:
    """Create or update the group, wait, watch it settle, and show the outcome; the exit code."""
    say(f"Deploying container group {settings.container_group_name} in resource group {settings.resource_group} "
        f"({settings.location}) ...")  # fmt: skip
    try:
        show = show_progress()  # one memory of what was shown, for the wait and the settle watch
        deployed = create_or_update(client, settings, args.timeout, on_progress=show)
    except HttpResponseError as error:
        if error_code(error) == "InvalidContainerGroupUpdate":  # the live group says what cannot change
            live = client.container_groups.get(settings.resource_group, settings.container_group_name)
            report_error(error, settings, args, details=changed_settings(live, settings))
            return 1
        if error.response is None or error.response.request.method == "PUT":
            raise  # Azure refused the request itself: no group was made or changed
        events = warning_events(client, settings)  # accepted, then failed
        report_error(error, settings, args, events=events)
        code = error_code(error)  # "Failed" is any failed operation: the events say which
        explain(event_names(events) + [code] * (code != "Failed"), settings, args)
        still_exists(settings, args, "still exists in Azure and keeps trying")
        return 1
    deployed, restarted = settle(client, settings, deployed, args.settle, show)
    text, stopped = summary(deployed)
    print(text)
    show_logs(client, settings, {**stopped, **restarted})
    if stopped or restarted:
        still_exists(settings, args)
    return 1 if stopped or restarted else 0


def recreate(client: ContainerInstanceManagementClient, settings: Settings, args: argparse.Namespace) -> int:
    """Check what the new group needs; delete the group if it exists, wait until it is gone, then deploy it anew."""
    deadline = time.monotonic() + args.timeout
    say("Checking what the new group depends on before deleting the old one ...")
    findings = run_checks(arm_reader(settings), settings, NEW_GROUP_NEEDS)
    for line in finding_lines(findings, settings, args):
        say("  " + line)
    if any(verdict == "problem" for verdict, *_ in findings):
        say("error: --recreate stopped before deleting anything: fix the problem above first (nothing was changed)")
        return 1
    name = settings.container_group_name
    gone = delete(client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ..."))
    try:
        code = deploy(client, settings, argparse.Namespace(**{**vars(args), "timeout": deadline - time.monotonic()}))
    except (Exception, KeyboardInterrupt) as error:  # reported first, then the note on what is gone
        code = report(error, settings, args)
    if gone and code != 0:
        say(f"note: --recreate deleted the old container group {name}: it is gone, and the new one is not running")
    return code


def run(args: argparse.Namespace, client: ContainerInstanceManagementClient, settings: Settings) -> int:
    """Deploy, recreate or delete, as asked; the exit code."""
    name = settings.container_group_name
    if args.check:
        return check(client, settings, args)
    if args.delete:
        deleted = delete(
            client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ...")
        )
        print(f"container group {name}: {'deleted' if deleted else 'does not exist, nothing to delete'}")
        return 0
    return (recreate if args.recreate else deploy)(client, settings, args)


def report(error: BaseException, settings: Settings, args: argparse.Namespace) -> int:
    """What went wrong, in the reader's terms, and its exit code; re-raises what it does not know."""
    sent = bool(SENT & {"PUT", "DELETE"})
    if isinstance(error, TimeoutError | KeyboardInterrupt):
        timeout = isinstance(error, TimeoutError)
        say(f"error: gave up waiting after {args.timeout:g} s (--timeout)." if timeout else "interrupted.")
        if args.check:  # it only reads
            return 4 if timeout else 130
        what = "deletion" if args.delete else "deployment"
        say(f"The {what} goes on in Azure." if sent else f"The {what} was not started: nothing was sent to Azure.")
        if sent:
            views = instance_views(SEEN["group"]) if "group" in SEEN else []  # the group as the wait last saw it
            states = [getattr(getattr(view, "current_state", None), "state", "") for _, view in views]
            waiting = "Waiting" in states or not views  # not seen yet: before its first state, it waits
            explain(["Waiting"] if timeout and waiting else [], settings, args)
            still_exists(settings, args, "is in Azure")
        return 4 if timeout else 130
    if isinstance(error, ClientAuthenticationError) and unreachable(error):  # not a problem with the credentials
        report_unreachable(unreachable(error), settings.authority_host)
        say("Nothing was sent to Azure.")
        return 1
    if isinstance(error, HttpResponseError):
        report_error(error, settings, args)
        if args.mode in ("deploy", "recreate") and not isinstance(error, ClientAuthenticationError):
            explain([error_code(error)], settings, args)
        return 3 if isinstance(error, ClientAuthenticationError) or error.status_code == 403 else 1
    if isinstance(error, ServiceRequestError | ServiceResponseError):  # after azure-core's retries
        report_unreachable(error, settings.resource_manager_endpoint)
        return 1
    raise error


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    every = [s.name for s in SETTINGS] + ["ACI_ENV_<NAME>", "ACI_SECURE_ENV_<NAME>", "ACI_SIDECAR_<NAME>_IMAGE"]
    epilog = "SETTINGS (README.md, Configuration):\n" + textwrap.fill(", ".join(every), 100, initial_indent="    ",
                                                                      subsequent_indent="    ")  # fmt: skip
    parser = argparse.ArgumentParser(
        description=__doc__, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env-file", help="settings file (default: .env, if present)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the request body; send nothing")
    mode.add_argument("--check", action="store_true", help="read what the deployment depends on; change nothing")
    mode.add_argument("--delete", action="store_true", help="delete the container group and wait")
    mode.add_argument("--recreate", action="store_true", help="delete the group if it exists, then create it")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for the outcome (1800)")
    parser.add_argument("--settle", type=float, default=10, help="seconds to watch the containers after success (10)")
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr (never a secret)")
    args = parser.parse_args(argv)
    if not 0 < args.timeout < float("inf"):
        parser.error("--timeout must be a positive number of seconds, for example --timeout 600")
    if not 0 <= args.settle < float("inf"):
        parser.error("--settle must be 0 or a positive number of seconds, for example --settle 30")
    args.mode = (
        "check"
        if args.check
        else "dry-run"
        if args.dry_run
        else "delete"
        if args.delete
        else "recreate"
        if args.recreate
        else "deploy"
    )
    return args


def main(argv: list[str] | None = None) -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started by a parent that ignores it
    args = parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    # Azure's INFO logs redact headers and omit bodies; never set logging_enable, which logs both.
    logging.getLogger("azure").setLevel(logging.INFO if args.verbose else logging.ERROR)
    http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    http_log.setLevel(logging.INFO)
    http_log.propagate = args.verbose  # shown with -v only; SENT always notes what went out
    http_log.addFilter(lambda record: SENT.update(re.findall(r"Request method: '(\w+)'", record.getMessage())) or 1)
    try:
        settings = settings_from(args)
        if args.dry_run:
            print(json.dumps(dry_run_body(settings), indent=2))
            say(f"dry run: the body of PUT .../containerGroups/{settings.container_group_name}; nothing was sent")
            return 0
        client = connect(settings, arm_reader if args.check else create_client)
    except UsageError as error:
        say(f"error: {error}")
        return 2
    try:
        return run(args, client, settings)
    except (Exception, KeyboardInterrupt) as error:
        return report(error, settings, args)


if __name__ == "__main__":
    sys.exit(main())
