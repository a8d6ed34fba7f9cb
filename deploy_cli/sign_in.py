"""Which way signs in (azure-identity's selector, then the sign-in settings that are set), and the one credential."""

from typing import NamedTuple

from azure.core.credentials import TokenCredential

from deploy import Settings, create_credential
from deploy_cli.settings import BY_NAME, EXAMPLES, SETTINGS, UsageError, clean

# azure-identity's own selector, lower-cased as it reads it: the sign-in ways each value allows.
TOKEN_CREDENTIALS = {
    "environmentcredential": ("client_secret", "certificate"),
    "workloadidentitycredential": ("federated_token",),
    "azureclicredential": ("azure_cli",),
    "managedidentitycredential": ("managed_identity",),
    "dev": ("azure_cli",),  # the only developer credential deploy.py offers
    # azure-identity 1.27.0's prod chain: EnvironmentCredential (secret, then certificate), workload identity,
    # then managed identity; the setting that is set picks among the first three, else the managed identity.
    "prod": ("client_secret", "certificate", "federated_token", "managed_identity"),
}


class Way(NamedTuple):
    """A way to sign in."""

    what: str  # said once on stderr, before signing in
    needs: tuple[str, ...] = ()  # the settings it cannot do without
    ignores: tuple[str, ...] = ()  # set anyway: warned about, and not passed on


# The settings that pick a way by being set (rule 2 of the README's "Sign-in").
PICKED_BY = {
    "AZURE_FEDERATED_TOKEN_FILE": "federated_token",
    "AZURE_CLIENT_CERTIFICATE_PATH": "certificate",
    "AZURE_CLIENT_SECRET": "client_secret",
}
SERVICE_PRINCIPAL = ("AZURE_TENANT_ID", "AZURE_CLIENT_ID")
# az signs in for the subscription's tenant, in the cloud `az cloud set` chose; a managed identity
# has one tenant and gets its tokens from the machine.
NOT_FOR_AZ = ("AZURE_TENANT_ID", "AZURE_AUTHORITY_HOST", "AZURE_CLIENT_ID")
WAYS = {
    "federated_token": Way(
        what="a federated token from AZURE_FEDERATED_TOKEN_FILE (WorkloadIdentityCredential)",
        needs=(*SERVICE_PRINCIPAL, "AZURE_FEDERATED_TOKEN_FILE"),
    ),
    "certificate": Way(
        what="the service principal's certificate (CertificateCredential)",
        needs=(*SERVICE_PRINCIPAL, "AZURE_CLIENT_CERTIFICATE_PATH"),
    ),
    "client_secret": Way(
        what="the service principal's client secret (ClientSecretCredential)",
        needs=(*SERVICE_PRINCIPAL, "AZURE_CLIENT_SECRET"),
    ),
    "azure_cli": Way(what="the Azure CLI's signed-in account (AzureCliCredential)", ignores=NOT_FOR_AZ),
    "managed_identity": Way(what="this machine's managed identity (ManagedIdentityCredential)", ignores=NOT_FOR_AZ[:2]),
}


def choose_way(given: set[str], typed: str, problems: list[str]) -> str:
    """Which way signs in, from the sign-in settings that are set and AZURE_TOKEN_CREDENTIALS as typed."""
    selector = typed.lower()  # azure-identity reads it so
    allowed = TOKEN_CREDENTIALS.get(selector, tuple(PICKED_BY.values()))
    stray = [name for name in PICKED_BY if name in given and PICKED_BY[name] not in allowed]
    if stray:
        problems.append(
            f"{' and '.join(stray)} set, but AZURE_TOKEN_CREDENTIALS={typed} does not use "
            f"{'them' if len(stray) > 1 else 'it'}: unset {' and '.join(stray)}, or unset "
            "AZURE_TOKEN_CREDENTIALS"
        )
    picked = [PICKED_BY[name] for name in PICKED_BY if name in given and PICKED_BY[name] in allowed]
    if len(picked) > 1:
        names = [name for name in PICKED_BY if name in given]
        both = "both" if len(names) == 2 else "all"
        problems.append(
            f"{', '.join(names[:-1])} and {names[-1]} are {both} set; keep one of them (each picks a way to sign in)"
        )
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
            else f"AZURE_TOKEN_CREDENTIALS={typed} needs AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"
        )
    return "azure_cli"


def sign_in_settings(variables: dict[str, str], values: dict, problems: list[str], warnings: list[str]) -> bool:
    """Puts the way into values (sign_in), drops what it ignores; whether a setting it needs is missing."""
    given = {s.name for s in SETTINGS if s.scope == "login" and clean(variables.get(s.name))}
    typed = clean(variables.get("AZURE_TOKEN_CREDENTIALS")) if "token_credentials" in values else ""
    way = choose_way(given, typed, problems)
    values["sign_in"] = way
    missing = [name for name in WAYS[way].needs if name not in given]
    for name in missing:
        problems.append(
            f"{name} is not set; for example {name}={EXAMPLES[name]} (signing in with {WAYS[way].what} needs it)"
        )
    for name in (name for name in WAYS[way].ignores if name in given):
        values.pop(BY_NAME[name].field, None)
        warnings.append(f"{name} is set, but {WAYS[way].what} does not use it; it is ignored")
    return bool(missing)


def credential(settings: Settings) -> TokenCredential:
    """The run's one credential; a certificate that cannot be used is a usage error (nothing was sent)."""
    try:
        return create_credential(settings)
    except ValueError as error:  # a certificate that cannot be loaded (wrong password, no private key)
        name = "AZURE_CLIENT_CERTIFICATE_PATH" if settings.sign_in == "certificate" else "the sign-in settings"
        raise UsageError(f"{name} cannot be used: {error} (nothing was sent to Azure)") from None
