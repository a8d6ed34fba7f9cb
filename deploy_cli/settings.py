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


