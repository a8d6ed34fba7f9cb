# SPDX-License-Identifier: MIT
"""Deploy an Azure Container Instances group into a virtual network subnet that pulls its images from a
private Azure Container Registry as a user-assigned managed identity: no registry password exists.

USAGE:
    python deploy.py [--env-file PATH] [--dry-run | --check | --plan | --restart | --delete | --recreate]
                     [--timeout SECONDS] [--settle SECONDS] [-v]

    README.md explains the prerequisites (registry, identity, subnet, who deploys) as az commands.
    This file is the sample to copy, between [START sample] and [END sample]: it prints nothing,
    reads no environment and needs only requirements.txt. Below it, main runs the command line,
    which is the deploy_cli package beside this file.

    Settings come from environment variables or an env file (default .env); the real environment
    wins. To deploy: AZURE_SUBSCRIPTION_ID, AZURE_RESOURCE_GROUP, AZURE_LOCATION (the VNet's region),
    ACI_CONTAINER_GROUP_NAME, ACI_SUBNET_ID (delegated to Microsoft.ContainerInstance/containerGroups),
    ACI_IDENTITY_ID (with AcrPull on the registry) and ACI_IMAGE (myregistry.azurecr.io/app:1.0).
    Sign-in: the Azure CLI's account (az login) unless AZURE_FEDERATED_TOKEN_FILE (CI with OIDC),
    AZURE_CLIENT_CERTIFICATE_PATH or AZURE_CLIENT_SECRET is set (each with AZURE_TENANT_ID and
    AZURE_CLIENT_ID), or AZURE_TOKEN_CREDENTIALS names a way. Every setting: docs/configuration.md.

EXIT CODES:
    0 done, 1 Azure rejected the request, the deployment failed, Azure could not be reached, a container
    is not running, --check found a problem or --plan a change Azure refuses in place, 2 configuration or
    usage error (nothing sent), 3 sign-in or authorization failed, 4 gave up waiting (--timeout),
    130 interrupted (Ctrl-C).
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
from azure.core.polling import LROPoller
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
    sign_in: str = "azure_cli"  # azure_cli, federated_token, managed_identity, certificate or client_secret
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
    own_cloud = urlsplit(settings.authority_host).hostname not in microsoft
    cloud = {"authority": settings.authority_host, "disable_instance_discovery": own_cloud, **waits(settings)}
    tenant, client = settings.tenant_id, settings.client_id
    match settings.sign_in:
        # A person after `az login`, or CI after azure/login: az's account, for this subscription. A secret,
        # certificate or token file names another way: with it, sign_in must say which (ValueError below).
        case "azure_cli" if not (settings.client_secret or settings.certificate_path or settings.federated_token_file):
            return AzureCliCredential(subscription=settings.subscription_id)
        case "federated_token":  # CI with OIDC (GitHub Actions, GitLab, Azure DevOps): a short-lived token, no secret
            token_file = settings.federated_token_file
            return WorkloadIdentityCredential(tenant_id=tenant, client_id=client, token_file_path=token_file, **cloud)
        case "managed_identity":  # a VM or build agent in Azure, as its own identity (user-assigned: its client ID)
            return ManagedIdentityCredential(client_id=client or None)
        case "certificate":  # a service principal with a certificate
            password = settings.certificate_password or None
            return CertificateCredential(tenant, client, settings.certificate_path, password=password, **cloud)
        case "client_secret":  # a service principal with a secret: the least preferred way, a password to keep
            return ClientSecretCredential(tenant, client, settings.client_secret, **cloud)
    raise ValueError(f"sign_in={settings.sign_in!r} is not a way to sign in with the credentials given")


# [END credential]


# [START create_client]
def arm_scopes(endpoint: str) -> list[str]:
    """The token audience of a known cloud comes from the SDK (Azure Government's is not its endpoint)."""
    clouds = [get_arm_endpoints(cloud) for cloud in AzureClouds]
    known = (c["credential_scopes"] for c in clouds if c["resource_manager"].rstrip("/") == endpoint)
    return next(known, [endpoint + "/.default"])


def create_client(settings: Settings, credential: TokenCredential) -> ContainerInstanceManagementClient:
    """An ARM client for any Azure cloud or a private endpoint, signed in with the credential that
    create_credential made: one credential for the whole run, so its tokens are reused."""
    endpoint = settings.resource_manager_endpoint.rstrip("/")
    return ContainerInstanceManagementClient(
        credential,
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
    # Azure refuses a private IP with no port (MissingIpAddressPorts): with none opened, the first container opens 80.
    none = not any(c.ports for c in settings.containers)
    opened = {c.name: (80,) if none and c is settings.containers[0] else c.ports for c in settings.containers}
    containers = [
        Container(
            name=c.name,
            image=c.image,
            command=list(c.command) or None,
            ports=[ContainerPort(port=port, protocol="TCP") for port in opened[c.name]] or None,
            environment_variables=environment(c),
            resources=ResourceRequirements(requests=ResourceRequests(cpu=c.cpu, memory_in_gb=c.memory_in_gb)),
            volume_mounts=mounts,
        )
        for c in settings.containers
    ]
    # Init containers run in order, each to completion, before the containers start.
    init_containers = [
        InitContainerDefinition(
            name=c.name,
            image=c.image,
            command=list(c.command) or None,
            environment_variables=environment(c) or None,
            volume_mounts=mounts,
        )
        for c in settings.init_containers
    ]
    # Containers share one IP (and reach each other on localhost): it opens every container's ports.
    ports = dict.fromkeys(port for c in settings.containers for port in opened[c.name])
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
        ],
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
def wait(client: ContainerInstanceManagementClient, settings: Settings, poller: LROPoller, timeout: float, on_progress):
    """Azure's verdict on an operation on the group (its result); on_progress sees the group every few seconds.
    Raises TimeoutError after timeout seconds (the operation goes on in Azure)."""
    deadline, group, name = time.monotonic() + timeout, settings.resource_group, settings.container_group_name
    while True:
        poller.wait(max(0.0, min(PROGRESS_SECONDS, deadline - time.monotonic())))
        if poller.done():
            return poller.result()
        if time.monotonic() >= deadline:
            raise TimeoutError(f"container group {name} is not provisioned after {timeout:g} s")
        if on_progress:
            on_progress(client.container_groups.get(group, name))


def create_or_update(
    client: ContainerInstanceManagementClient,
    settings: Settings,
    timeout: float = 1800,
    on_progress: Callable[[ContainerGroup], None] | None = None,
) -> ContainerGroup:
    """PUT the group and wait; raises the SDK's HttpResponseError when Azure refuses the group or
    provisioning fails, and TimeoutError after timeout seconds (the deployment goes on in Azure)."""
    group, name = settings.resource_group, settings.container_group_name
    poller = client.container_groups.begin_create_or_update(group, name, build_container_group(settings))
    return wait(client, settings, poller, timeout, on_progress)


# [END create_or_update]


# [START delete]
def delete(
    client: ContainerInstanceManagementClient,
    settings: Settings,
    timeout: float = 1800,
    on_progress: Callable[[ContainerGroup], None] | None = None,
) -> bool:
    """Delete the group and wait until it is gone; False when there was no such group. on_progress sees the
    group found, before it is deleted. Raises TimeoutError after timeout seconds."""
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


def parse_args(argv: list[str] | None, settings_help: str = ""):
    """The command line as an argparse.Namespace: mode, env_file, timeout, settle, verbose."""
    import argparse

    head, _, usage = __doc__.partition("USAGE:\n")  # argparse prints the usage line itself, from the flags
    parser = argparse.ArgumentParser(
        description=head + usage.split("\n", 3)[3],
        epilog=settings_help,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--env-file", metavar="PATH", help="settings file (default: .env, if present)")
    # One destination for the mode, as json.tool does: the flags exclude each other.
    modes = parser.add_mutually_exclusive_group()
    for flag, what in (
        ("--dry-run", "print the request body; send nothing"),
        ("--check", "read what the deployment depends on; change nothing"),
        ("--plan", "read the group and say what a deploy would do; change nothing"),
        ("--restart", "restart the running group's containers in place (pulls a moved tag again)"),
        ("--delete", "delete the container group and wait"),
        ("--recreate", "delete the group if it exists, then create it"),
    ):
        modes.add_argument(flag, dest="mode", action="store_const", const=flag[2:], help=what)
    parser.set_defaults(mode="deploy")
    parser.add_argument("--timeout", type=float, default=1800, metavar="SECONDS", help="seconds to wait in all (1800)")
    parser.add_argument(
        "--settle",
        type=float,
        metavar="SECONDS",
        help=f"seconds to watch the containers after success (10; {SETTLE_MAX} at most)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="more detail on stderr (never a secret)")
    args = parser.parse_args(argv)
    if not 0 < args.timeout < float("inf"):
        parser.error("--timeout must be a positive number of seconds, for example --timeout 600")
    if args.settle is not None and args.mode in ("dry-run", "check", "plan", "delete"):
        parser.error(f"--settle watches the containers after a deploy, --recreate or --restart, not --{args.mode}")
    if not 0 <= (args.settle or 0) <= SETTLE_MAX:
        parser.error(f"--settle must be 0 to {SETTLE_MAX} seconds, for example --settle 30 (--timeout bounds it too)")
    args.settle = 10.0 if args.settle is None else args.settle
    return args


SETTLE_MAX = 600  # a watch longer than ten minutes is monitoring, not a deployment's outcome


def main(argv: list[str] | None = None) -> int:
    """Run the sample from the command line: settings, sign-in, the command, and what its outcome means."""
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started by a parent that ignores it
    try:  # imported here, so that `import deploy` loads the sample alone
        from deploy_cli import commands, load, sign_in
    except ModuleNotFoundError as error:
        if error.name != "deploy_cli":
            raise
        sys.stderr.write(
            f"error: the command line is the {error.name} folder beside deploy.py, which is not here; the "
            "sample above needs only requirements.txt: import deploy, or copy the folder too\n"
        )
        return 2
    args = parse_args(argv, load.settings_help())
    watch = commands.watch(args)  # what goes out, and the deadline --timeout sets for the whole run
    try:
        settings = load.settings_from(args)
        if args.mode == "dry-run":
            return commands.dry_run(settings)
        credential = sign_in.credential(settings)  # one for the whole run: its tokens are reused
        azure = commands.Azure(create_client(settings, credential), credential, settings)
    except load.UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    commands.bound_the_first_answer(watch, settings, args)
    try:
        return commands.run(args, azure, settings, watch)
    except (Exception, KeyboardInterrupt) as error:
        return commands.report(error, settings, args, watch, azure)


if __name__ == "__main__":
    sys.modules.setdefault("deploy", sys.modules[__name__])  # the command line imports this file as deploy
    sys.exit(main())
