"""The table of settings: each one's variable, field, example and check, and how a value is judged."""

import dataclasses
import re
from collections.abc import Callable

from deploy_cli.values import (
    GUID,
    JWT,
    SECRET_SHAPE,
    command_line,
    guid,
    https_url,
    image_reference,
    ip_list,
    matching,
    one_of,
    port_list,
    positive_number,
    readable_file,
    registry_image,
    resource_id,
    shared_dir,
    token_file,
)


class UsageError(Exception):
    """A problem with the command line, its files or its settings; nothing was sent to Azure."""


class SettingsError(UsageError):
    """Every problem with the settings, each naming its variable; missing: whether one is not set."""

    def __init__(self, problems: list[str], missing: bool = False):
        super().__init__("the settings need fixing (nothing was sent to Azure):\n  " + "\n  ".join(problems))
        self.problems, self.missing = problems, missing


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
# A container's environment: ACI_ENV_<NAME>, ACI_SECURE_ENV_<NAME>, and the same after a sidecar's or init's prefix.
ENV, SECURE_ENV = "ENV_", "SECURE_ENV_"
SETTINGS = (
    Setting(
        name="AZURE_TOKEN_CREDENTIALS",
        field="token_credentials",
        example="AzureCliCredential",
        check=one_of(
            "a sign-in way azure-identity names",
            *("EnvironmentCredential", "WorkloadIdentityCredential", "AzureCliCredential", "ManagedIdentityCredential"),
            *("dev", "prod"),
        ),
        scope="login",
    ),
    Setting(
        name="AZURE_TENANT_ID",
        field="tenant_id",
        example=ZERO_GUID,
        check=matching(r"[0-9a-zA-Z.-]+", "a tenant ID (a GUID or a domain)"),
        scope="login",
        hidden=True,
    ),
    Setting(
        name="AZURE_CLIENT_ID",
        field="client_id",
        example=ZERO_GUID,
        check=guid("an application (client) ID (a GUID)"),
        scope="login",
        hidden=True,
    ),
    Setting(
        name="AZURE_FEDERATED_TOKEN_FILE",
        field="federated_token_file",
        example="/tmp/azure-federated-token",
        check=token_file,
        scope="login",
    ),
    Setting(
        name="AZURE_CLIENT_CERTIFICATE_PATH",
        field="certificate_path",
        example="/path/to/sp-cert.pem",
        check=readable_file,
        scope="login",
    ),
    Setting(
        name="AZURE_CLIENT_CERTIFICATE_PASSWORD",
        field="certificate_password",
        example="only for an encrypted certificate",
        check=str,
        scope="login",
        hidden=True,
    ),
    Setting(
        name="AZURE_CLIENT_SECRET",
        field="client_secret",
        example="the secret from: az ad sp create-for-rbac",
        check=str,
        scope="login",
        hidden=True,
    ),
    Setting(
        name="AZURE_SUBSCRIPTION_ID",
        field="subscription_id",
        example=ZERO_GUID,
        check=guid("a subscription ID (a GUID)"),
        scope="all",
        required=True,
        hidden=True,
    ),
    Setting(
        name="AZURE_RESOURCE_GROUP",
        field="resource_group",
        example="rg-aci-private",
        check=matching(r"[-\w.()]{0,89}[-\w()]", "a resource group name"),
        scope="all",
        required=True,
    ),
    Setting(
        name="AZURE_LOCATION",
        field="location",
        example="westeurope",
        check=matching(r"[A-Za-z0-9 ]+", "an Azure region name", lambda value: value.replace(" ", "").lower()),
        required=True,
    ),
    Setting(
        name="ACI_CONTAINER_GROUP_NAME",
        field="container_group_name",
        example="aci-private-demo",
        check=matching(
            r"(?!.*--)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?",
            "a valid container group name (1-63 lowercase letters, digits and single hyphens, a letter or digit at "
            "each end)",
        ),
        scope="all",
        required=True,
    ),
    Setting(
        name="ACI_SUBNET_ID",
        field="subnet_id",
        example=f"{EXAMPLE_GROUP_ID}/Microsoft.Network/virtualNetworks/vnet-aci/subnets/snet-aci",
        check=resource_id("Microsoft.Network/virtualNetworks/subnets"),
        required=True,
        hidden=True,
    ),
    Setting(
        name="ACI_IDENTITY_ID",
        field="identity_id",
        example=f"{EXAMPLE_GROUP_ID}/Microsoft.ManagedIdentity/userAssignedIdentities/id-aci-acrpull",
        check=resource_id("Microsoft.ManagedIdentity/userAssignedIdentities"),
        required=True,
        hidden=True,
    ),
    Setting(
        name="ACI_RESTART_POLICY",
        field="restart_policy",
        example="Always",
        check=one_of("a restart policy", "Always", "OnFailure", "Never"),
    ),
    Setting(name="ACI_DNS_SERVERS", field="dns_servers", example="10.0.2.4", check=ip_list),
    Setting(
        name="ACI_SHARED_DIR",
        field="shared_dir",
        example="/shared",
        check=shared_dir,
    ),
    # The main container's settings; a sidecar's (ACI_SIDECAR_<NAME>_...) and an init container's
    # (ACI_INIT_..., ACI_INIT_<N>_...) are the same with their own prefix.
    Setting(
        name="ACI_IMAGE",
        field="image",
        example="acrprivatedemo.azurecr.io/aci-helloworld:latest",
        check=registry_image,
        scope="container",
    ),
    Setting(name="ACI_CPU", field="cpu", example="1", check=positive_number, scope="container"),
    Setting(name="ACI_MEMORY_GB", field="memory_in_gb", example="1.5", check=positive_number, scope="container"),
    Setting(name="ACI_PORTS", field="ports", example="80", check=port_list, scope="container"),
    Setting(
        name="ACI_COMMAND", field="command", example="python -m http.server 80", check=command_line, scope="container"
    ),
    Setting(
        name="ACI_INIT_IMAGE",
        field="image",
        example="mcr.microsoft.com/azurelinux/busybox:1.36",
        check=image_reference,
        scope="container",
    ),
    Setting(
        name="ACI_INIT_COMMAND",
        field="command",
        example="mkdir -p /shared/config",
        check=command_line,
        scope="container",
    ),
    Setting(
        name="AZURE_AUTHORITY_HOST",
        field="authority_host",
        example="https://login.microsoftonline.com",
        check=https_url,
        scope="login",
    ),
    Setting(
        name="AZURE_RESOURCE_MANAGER_ENDPOINT",
        field="resource_manager_endpoint",
        example="https://management.azure.com",
        check=https_url,
        scope="login",
    ),
)
EXAMPLES = {setting.name: setting.example for setting in SETTINGS}
BY_NAME = {setting.name: setting for setting in SETTINGS}
DEPLOYING = {"all", "deploy", "login"}
SCOPES = {
    "deploy": DEPLOYING,
    "recreate": DEPLOYING,
    "check": DEPLOYING,
    "plan": DEPLOYING,
    "restart": {"all", "login"},
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


def secrets_in(variables: dict[str, str]) -> set[str]:
    """The values that must never be printed, whatever setting they were pasted into."""
    names = [s.name for s in SETTINGS if s.hidden and s.check is str]
    return {clean(variables[n]) for n in variables if n in names or SECURE_ENV in n} - {""}


# Personal access tokens of GitHub and GitLab, by their documented prefixes: never echoed, whatever they were pasted as.
TOKEN_PREFIXES = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-")


def secret_like(value: str, secrets: set[str]) -> bool:
    shaped = SECRET_SHAPE.fullmatch(value) or JWT.fullmatch(value) or value.startswith(TOKEN_PREFIXES)
    return value in secrets or bool(shaped)


def problem_with(name: str, value: str, what: str, hidden: bool, secrets: set[str] = frozenset()) -> str:
    first = re.sub(r"^ACI_SIDECAR_[A-Za-z0-9]+_", "ACI_", re.sub(r"^ACI_INIT_\d+_", "ACI_INIT_", name))
    example = EXAMPLES.get(name) or EXAMPLES.get(first, "")  # a sidecar's, or a later init's: the first's
    example = f"; for example {name}={example}" if example else ""
    if secret_like(value, secrets):
        return f"{name} (value not shown: it looks like a token or a secret) is not {what}{example}"
    if hidden:
        guid = ", not a GUID" if "GUID" in what and not GUID.fullmatch(value.strip("{}")) else ""
        return f"{name} (value not shown: {len(value)} characters{guid}) is not {what}{example}"
    return f"{name}={value!r} is not {what}{example}"


def parsed(name: str, value: str, check: Callable, secrets: set[str], problems: list[str], hidden: bool = False):
    """check(value), or None with the problem noted; a value shaped like a secret passes no check but str's."""
    try:
        if secret_like(value, secrets) and check is not str:
            raise ValueError("what this setting holds")
        return check(value)
    except ValueError as error:
        problems.append(problem_with(name, value, str(error), hidden, secrets))
        return None
