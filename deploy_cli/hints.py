"""What to check or run next, by Azure's error code, event or message, filled in with what deploy.py knows."""

import argparse
import os
import re
import shlex
import sys
from urllib.parse import urlsplit

from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from deploy import Settings
from deploy_cli.progress import in_time_order, instance_views, say

PULL_HINT = (
    "check that the image exists in the registry, that ACI_IDENTITY_ID has AcrPull on the registry (a new role "
    "assignment can take up to 30 minutes to apply; on an ABAC registry it needs Container Registry Repository "
    "Reader, and a condition on the assignment may exclude the repository), and that the registry allows trusted "
    "Microsoft services: "
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
    "LocationNotAvailableForResourceType": "AZURE_LOCATION names no region that offers container groups (the message "
    "lists them): the closest is <closest region>; the group goes in its virtual network's region",
    "InvalidResourceLocation": "a group keeps its region: it exists in <live region>. Set AZURE_LOCATION=<live "
    "region>, or delete it and create it in the new region (python deploy.py --recreate), with a subnet there",
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
    "<AZURE_CLIENT_ID>, or sign in without a secret (docs/sign-in.md: Deploy from CI without a secret)",
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
    "another way (docs/sign-in.md)",
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
    "No identity has been assigned": "this machine has no managed identity: assign one to the VM or agent and give it "
    "the roles of docs/sign-in.md (A managed identity), or sign in another way",
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


def filled(hint: str, settings: Settings, args: argparse.Namespace, message: str = "") -> str:
    """A hint with what deploy.py knows put in: the command line as it was typed, names and IDs, and what Azure's
    message says (the regions)."""
    image = settings.containers[0].image if settings.containers else "<registry>."
    group_id = f"/subscriptions/{settings.subscription_id}/resourceGroups/{settings.resource_group}"
    known = {
        "python deploy.py": command(args),
        "<registry>": image.split(".", 1)[0],
        "<group>": settings.resource_group,
        "<resource group ID>": group_id,
        "<AZURE_SUBSCRIPTION_ID>": settings.subscription_id,
        "<AZURE_CLIENT_ID>": settings.client_id,
        "<ACI_SUBNET_ID>": settings.subnet_id,
    }
    if "region>" in hint:  # only the region hints read Azure's message; --check's fixes never do
        live = re.search(r"already exists in location '([^']+)'", message)
        known |= {"<closest region>": closest_region(message, settings), "<live region>": live[1] if live else ""}
    for placeholder, value in known.items():
        hint = hint.replace(placeholder, value or placeholder)
    return hint


def report_error(
    error: HttpResponseError, settings: Settings, args: argparse.Namespace, details: list[str] = (), events: list = ()
) -> None:
    """The Azure error code and message, details and Warning events, and a hint."""
    code = error_code(error)
    message = error.error.message if error.error and error.error.message else error.message
    message = re.sub(r"^ERROR: ", "", message or "")  # the Azure CLI's own prefix: one "error:" is enough
    say(f"error: {error.error.code}: {message}" if error.error and error.error.code else f"error: {message}")
    for line in details:
        say(f"  {line}")
    for owner, event in events:
        say(f"  {owner}: {event.name}: {event.message}")
    hint = next((EVENT_HINTS[name] for name in event_names(events) if name in EVENT_HINTS), None)
    hint = hint or next((hint for phrase, hint in MESSAGE_HINTS.items() if phrase in (message or "")), None)
    hint = hint or HINTS.get(code)
    if hint:
        say(f"hint: {filled(hint, settings, args, message or '')}")


def closest_region(message: str, settings: Settings) -> str:
    """The region in Azure's list (LocationNotAvailableForResourceType) closest to AZURE_LOCATION as typed."""
    listed = re.search(r"List of available regions for the resource type is '([^']*)'", message or "")
    regions = [region.strip().replace(" ", "").lower() for region in (listed[1] if listed else "").split(",")]
    import difflib  # only after Azure refused a region: a run that succeeds never loads it

    close = difflib.get_close_matches(settings.location, regions, 1, 0.5)
    return close[0] if close else "one of those listed"


def warning_events(client: ContainerInstanceManagementClient, settings: Settings) -> list:
    """The Warning events of a group whose provisioning failed, (owner, event) in time order: they say why."""
    group = client.container_groups.get(settings.resource_group, settings.container_group_name)
    return [
        (owner, event)
        for owner, view in instance_views(group)
        for event in in_time_order(view.events)
        if event.type == "Warning"
    ]


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
        say(
            f"hint: Python does not trust the TLS certificate of {host}; behind a TLS-inspecting proxy, point "
            f"REQUESTS_CA_BUNDLE at a PEM file with its CA{now}"
        )
    else:
        say(f"hint: check the network, DNS, any proxy (HTTPS_PROXY) and the endpoint settings for {host}")


def command(args: argparse.Namespace, *flags: str) -> str:
    """This command line as it was typed (interpreter, script, --env-file) with other flags, for hints."""
    python = os.path.relpath(sys.executable) if sys.executable.startswith(os.getcwd() + os.sep) else sys.executable
    env_file = ("--env-file", args.env_file) if args.env_file else ()
    return shlex.join([python, sys.argv[0], *env_file, *flags])


def still_exists(settings: Settings, args: argparse.Namespace, what: str = "still exists in Azure") -> None:
    group = f"-g {settings.resource_group} -n {settings.container_group_name}"
    say(f"The container group {what} (billed while its containers run). Check it:")
    say(f'  az container show {group} --query "{{provisioning: provisioningState, state: instanceView.state}}"')
    say(
        f"Fix the cause and run {command(args, '--recreate')}; or delete it:\n  {command(args, '--delete')}"
        f"   (or: az container delete {group} --yes)"
    )


def follow_it(settings: Settings, args: argparse.Namespace) -> None:
    """After --timeout or Ctrl-C nothing has failed: how to follow the group, and how to delete it, never to recreate
    it (that would delete a deployment that may be about to succeed)."""
    group = f"-g {settings.resource_group} -n {settings.container_group_name}"
    say("Follow it:")
    say(f'  az container show {group} --query "{{provisioning: provisioningState, state: instanceView.state}}"')
    if args.mode == "delete":
        return
    say(f"  or run {command(args)} again: it finds the group and sends nothing while it is as configured")
    delete = command(args, "--delete")
    say(f"To delete it (billed while its containers run): {delete}   (or: az container delete {group} --yes)")
