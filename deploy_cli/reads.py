"""The GET requests --check makes, and the facts each one gives: subnet, network, identity, registry, roles."""

import datetime
import difflib
import fnmatch
import ipaddress
import json
import re
from collections.abc import Callable
from urllib.parse import urlsplit

import isodate
from azure.core.credentials import TokenCredential
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError, ServiceResponseError
from azure.core.pipeline.policies import RetryPolicy, UserAgentPolicy
from azure.core.rest import HttpRequest
from azure.mgmt.containerinstance.models import ContainerGroup
from azure.mgmt.core import ARMPipelineClient
from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy, ARMHttpLoggingPolicy

from deploy import Settings, arm_scopes
from deploy_cli.plan import changed_settings

# --check reads what the deployment depends on with GET requests only (FACTS.md, "Reading what the
# deployment depends on") and names what is wrong: each read is a row of READS, each verdict a row of RULES.
CONTAINER_GROUPS = "Microsoft.ContainerInstance/containerGroups"
CLASSIC, ABAC = "LegacyRegistryPermissions", "AbacRepositoryPermissions"  # a registry's roleAssignmentMode
DATA_READER = {"577a9874-89fd-4f24-9dbd-b5034d0ad23a": "Container Registry Data Importer and Data Reader"}
# The built-in roles that let an identity pull, by mode (docs: ACR built-in roles; in ABAC mode AcrPull,
# Owner, Contributor and Reader are not honoured), and what a custom role must allow instead.
PULL_ROLES = {
    CLASSIC: {
        "7f951dda-4ed3-4680-a7ca-43fe172d538d": "AcrPull",
        "8311e382-0749-4cb8-b61a-304f252e45ec": "AcrPush",
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
        "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
        "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
        **DATA_READER,
    },
    ABAC: {
        "b93aa761-3e63-49ed-ac28-beffa264f7ac": "Container Registry Repository Reader",
        "2a1e307c-b015-4ebd-883e-5b7698a07328": "Container Registry Repository Writer",
        "2efddaa5-3f1f-4df3-97df-af3f13818f4c": "Container Registry Repository Contributor",
        **DATA_READER,
    },
}
PULL_PERMISSION = {
    CLASSIC: ("actions", "notActions", "Microsoft.ContainerRegistry/registries/pull/read"),
    ABAC: ("dataActions", "notDataActions", "Microsoft.ContainerRegistry/registries/repositories/content/read"),
}
FRESH_MINUTES = 30  # docs: a role assignment can take up to 30 minutes to apply


class Skipped(Exception):
    """A read that got no JSON: why; the HTTP status, if any (404: the resource does not exist); for a 403, the
    action that was refused."""

    def __init__(self, why: str, status: int = 0, action: str = ""):
        super().__init__(why)
        self.status, self.action = status, action


def arm_reader(settings: Settings, credential: TokenCredential) -> Callable[..., dict]:
    """get(path or next link, *api_versions, **query): a GET's JSON, trying the next api-version when the cloud
    lacks one. A pipeline of its own: the SDK client's would register the provider by POSTing on a 409. Signed
    in with the run's credential, whose ARM token outlives a federated token file that has expired since."""
    endpoint = settings.resource_manager_endpoint.rstrip("/")
    sign_in = ARMChallengeAuthenticationPolicy(credential, *arm_scopes(endpoint))
    retry = RetryPolicy(retry_total=2, timeout=min(settings.answer_timeout, 30))
    policies = [UserAgentPolicy("deploy.py"), retry, sign_in, ARMHttpLoggingPolicy()]
    pipeline = ARMPipelineClient(endpoint, policies=policies)

    def get(path: str, *versions: str, **query: str) -> dict:
        for version in versions:
            request = (
                HttpRequest("GET", path)
                if path.startswith("https://")
                else HttpRequest("GET", endpoint + path, params={"api-version": version, **query})
            )
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
    kinds = {
        "ipConfigurations": "IP configurations (NICs)",
        "privateEndpoints": "private endpoints",
        "resourceNavigationLinks": "resource links",
    }
    held = [f"{len(subnet[key])} {what}" for key, what in kinds.items() if subnet.get(key)]
    held += [
        f"a {link['properties'].get('linkedResourceType')} link"
        for link in subnet.get("serviceAssociationLinks") or []
        if link["properties"].get("linkedResourceType") != CONTAINER_GROUPS
    ]
    services = [delegation["properties"]["serviceName"] for delegation in subnet.get("delegations") or []]
    prefixes = subnet.get("addressPrefixes") or [subnet.get("addressPrefix", "0.0.0.0/0")]
    nat = (subnet.get("natGateway") or {}).get("id", "").rsplit("/", 1)[-1]
    return {
        "services": services,
        "others": ", ".join(s for s in services if s != CONTAINER_GROUPS),
        "held": ", ".join(held),
        "size": min(ipaddress.ip_network(p, strict=False).prefixlen for p in prefixes),
        "nat": nat,
        "outbound": f", outbound through NAT gateway {nat}" if nat else "",
    }


def network_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    return {"location": get(re.split("/subnets/", settings.subnet_id, flags=re.I)[0], "2024-05-01")["location"]}


def identity_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    identity = get(settings.identity_id, "2024-11-30", "2023-01-31")  # isolationScope is new in 2024-11-30
    properties = identity["properties"]
    return {
        "principal": properties["principalId"],
        "location": identity["location"],
        "isolation": properties.get("isolationScope", "None"),
    }


def list_registries(get: Callable, scope: str, into: dict) -> Skipped | None:
    """Adds every registry in scope to into, by login server; why the list could not be read, or None."""
    page: dict = {"nextLink": f"{scope}/providers/Microsoft.ContainerRegistry/registries"}
    try:
        while page.get("nextLink"):
            page = get(page["nextLink"], "2025-11-01", "2023-07-01")
            into.update({r["properties"].get("loginServer", "").lower(): r for r in page.get("value") or []})
    except Skipped as error:  # 409 MissingSubscriptionRegistration: no registry there
        return error
    return None


def registry_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    """Only the login server is known: look for it in the group's registries, then the subscription's."""
    subscription = f"/subscriptions/{settings.subscription_id}"
    with found["listing"]:  # the registry checks search the same lists: each is read once
        registries, listed = found.setdefault("registries", {}), found.setdefault("listed", {})
        for scope in (f"{subscription}/resourceGroups/{settings.resource_group}", subscription):
            if host not in registries and scope not in listed:
                listed[scope] = list_registries(get, scope, registries)
        registry = registries.get(host)
        unread = "; ".join(f"{scope}: {why}" for scope, why in listed.items() if why)
        refused = [scope for scope, why in listed.items() if why and why.status == 403]
    if registry is None and refused:  # a list the deployer may not read: say so, and which role reads it
        where = " nor ".join(
            "the subscription" if scope == subscription else f"resource group {settings.resource_group}"
            for scope in refused
        )
        by_hand = f"check it by hand: az acr show --name {host.split('.')[0]}"
        action = "Microsoft.ContainerRegistry/registries/read"
        raise Skipped(f"not allowed to list the registries of {where}; {by_hand}", 403, action)
    if registry is None:
        raise Skipped(
            f"not found in resource group {settings.resource_group} nor in the subscription"
            f"{f' (could not list {unread})' if unread else ''}; it may be elsewhere or unreadable; check "
            f"it by hand: az acr show --name {host.split('.')[0]}"
        )
    properties, rules = registry["properties"], registry["properties"].get("networkRuleSet") or {}  # Basic: none
    locked = properties.get("publicNetworkAccess") == "Disabled" or rules.get("defaultAction") == "Deny"
    mode = properties.get("roleAssignmentMode") or CLASSIC  # absent before 2025-11-01
    return {
        "id": registry["id"],
        "name": registry["name"],
        "sku": registry["sku"]["name"],
        "locked": locked,
        "bypass": properties.get("networkRuleBypassOptions", "AzureServices"),
        "mode": mode,
        "modes": "ABAC (repository permissions)" if mode == ABAC else "classic",
        "access": "public access denied, trusted Microsoft services allowed" if locked else "public access allowed",
    }


def pulls(get: Callable, role_id: str, guid: str, mode: str) -> str:
    """The name of the role, if it lets the identity pull in this mode; a custom role by its permissions."""
    if any(guid in roles for roles in PULL_ROLES.values()):  # built in: by its GUID
        return PULL_ROLES[mode].get(guid, "")
    try:
        role = get(role_id, "2022-04-01")["properties"]
    except Skipped:
        return ""
    allowed, denied, needed = PULL_PERMISSION[mode]
    allows = [
        p
        for p in role.get("permissions") or []
        if any(fnmatch.fnmatch(needed, a) for a in p.get(allowed) or [])
        and not any(fnmatch.fnmatch(needed, n) for n in p.get(denied) or [])
    ]
    return role.get("roleName", guid) if allows else ""


def repository(image: str) -> str:
    """host/repository:tag or host/repository@digest: the repository."""
    path = image.split("/", 1)[1].split("@", 1)[0]
    return path.rsplit(":", 1)[0] if ":" in path.rsplit("/", 1)[-1] else path


def allows(condition: str, name: str) -> bool:
    """Whether an ABAC condition plainly lets the repository name be read: it names it, or a prefix or pattern of it,
    with an operator that matches (ACR docs: conditions on repositories:name). Anything else may exclude it."""
    named = r"repositories:name\]\s+(?:ForAnyOfAnyValues:)?(\w+)\s+(\{[^}]*\}|'[^']*')"
    for operator, values in re.findall(named, condition, flags=re.IGNORECASE):
        caseless, operator = operator.lower().endswith("ignorecase"), operator.lower().removesuffix("ignorecase")
        for value in re.findall(r"'([^']*)'", values):
            left, right = (name.lower(), value.lower()) if caseless else (name, value)
            if {
                "stringequals": left == right,
                "stringstartswith": left.startswith(right),
                "stringlike": fnmatch.fnmatchcase(left, right),
            }.get(operator):
                return True
    return False


def role_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    identity, registry = found.get(("identity", "")), found.get(("registry", host))
    unread = [
        what
        for what, facts in (("the identity's principal ID", identity), ("the registry", registry))
        if not isinstance(facts, dict)
    ]
    if unread:
        raise Skipped(f"needs {' and '.join(unread)}, which could not be read")
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
        pulling += [(name, int((now - created).total_seconds() // 60), properties.get("condition"))] if name else []
        ignored += [PULL_ROLES[CLASSIC][guid]] if mode == ABAC and guid in PULL_ROLES[CLASSIC] else []
    age = max((minutes for _, minutes, _ in pulling), default=0)
    images = [c.image for c in settings.containers + settings.init_containers if c.image.lower().startswith(host + "/")]
    names = sorted({repository(image) for image in images})
    # A grant whose condition (ABAC) does not plainly allow every repository may exclude one: InaccessibleImage.
    plain = any(not condition or all(allows(condition, n) for n in names) for _, _, condition in pulling)
    return {
        "principal": principal,
        "registry_id": registry["id"],
        "registry": registry["name"],
        "modes": registry["modes"],
        "pulling": ", ".join(sorted({name for name, _, _ in pulling})),
        "repositories": ", ".join(names),
        "conditions": "" if plain else "; ".join(sorted({condition for _, _, condition in pulling if condition})),
        "age": age,
        "fresh": age < FRESH_MINUTES,
        "role": "Container Registry Repository Reader" if mode == ABAC else "AcrPull",
        "ignored": f" ({', '.join(ignored)} is assigned, but ABAC mode ignores it)" if ignored else "",
    }


def group_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    path = f"/subscriptions/{settings.subscription_id}/resourceGroups/{settings.resource_group}/providers/"
    live = ContainerGroup.deserialize(get(path + f"{CONTAINER_GROUPS}/{settings.container_group_name}", "2023-05-01"))
    return {
        "provisioning": live.provisioning_state,
        "state": live.instance_view.state if live.instance_view else "unknown",
        "changed": ", ".join(changed_settings(live, settings)),
    }


def provider_facts(get: Callable, settings: Settings, host: str, found: dict) -> dict:
    provider = get(f"/subscriptions/{settings.subscription_id}/providers/Microsoft.ContainerInstance", "2021-04-01")
    types = [t for t in provider.get("resourceTypes") or [] if t.get("resourceType", "").lower() == "containergroups"]
    # Display names ("West Europe"), compared as AZURE_LOCATION is written; no list, nothing to compare.
    regions = [region.replace(" ", "").lower() for t in types for region in t.get("locations") or []]
    close = difflib.get_close_matches(settings.location, regions, 1, 0.5)
    return {
        "registration": provider.get("registrationState", "unknown"),
        "offered": not regions or settings.location in regions,
        "closest": close[0] if close else "?",
    }
