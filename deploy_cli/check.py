"""--check: the checks (READS) and their verdicts (RULES), run in one loop, and the lines they print."""

import argparse
import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from azure.core.exceptions import HttpResponseError
from azure.mgmt.core.tools import parse_resource_id

from deploy import Settings, registry_servers
from deploy_cli.hints import command, filled
from deploy_cli.progress import say
from deploy_cli.reads import (
    CONTAINER_GROUPS,
    Skipped,
    group_facts,
    identity_facts,
    network_facts,
    provider_facts,
    registry_facts,
    role_facts,
    subnet_facts,
)


class Missing(NamedTuple):
    """What a check says when its read answers 404 from a place the deployer may read."""

    verdict: str
    text: str
    fix: str = ""


class Read(NamedTuple):
    """A check: one read, and its line's words (str.format fields: the read's facts and the settings' names)."""

    facts: Callable[..., dict]  # (get, settings, registry host, facts found so far) -> this read's facts
    label: str
    ok: str  # the text when no rule holds
    missing: Missing
    reader: str  # the read-only role that lets a deployer make this read


class Rule(NamedTuple):
    """A verdict of one check: when it holds on the check's facts, its sentence and the command that fixes it."""

    check: str
    verdict: str  # problem or warning
    when: Callable[[dict], object]
    text: str
    fix: str = ""


DELEGATE = "az network vnet subnet update --ids {subnet_id} --delegations " + CONTAINER_GROUPS
NEW_SUBNET = (
    "az network vnet subnet create -g {vnet_group} --vnet-name {vnet} -n snet-aci --address-prefixes "
    "<a free range, /28 or larger> --delegations " + CONTAINER_GROUPS
)
# In the order the lines are printed.
READS = {
    "subnet": Read(
        facts=subnet_facts,
        label="subnet {subnet}",
        ok="delegated to container groups only, nothing else in it, /{size}{outbound}",
        missing=Missing(verdict="problem", text="does not exist", fix=NEW_SUBNET),
        reader="Reader on virtual network {vnet}",
    ),
    "network": Read(
        facts=network_facts,
        label="virtual network {vnet}",
        ok="in {location}, as AZURE_LOCATION",
        missing=Missing(
            verdict="problem",
            text="does not exist",
            fix="az network vnet create -g {vnet_group} -n {vnet} -l {wanted}",
        ),
        reader="Reader on virtual network {vnet}",
    ),
    "identity": Read(
        facts=identity_facts,
        label="identity {identity}",
        ok="principal ID {principal}",
        missing=Missing(
            verdict="problem",
            text="does not exist",
            fix="az identity create -g {identity_group} -n {identity} -l {wanted}; a new identity is a new principal: "
            "give it the pull role on the registry (az role assignment create --assignee-object-id <its principalId> "
            "--assignee-principal-type ServicePrincipal --role AcrPull --scope <registry ID>)",
        ),
        reader="Reader (or Managed Identity Operator) on identity {identity}",
    ),
    "registry": Read(
        facts=registry_facts,
        label="registry {host}",
        ok="{sku}, {access}, {modes} role assignments",
        missing=Missing(verdict="skipped", text="not found"),
        reader="Reader on the registry's resource group or the subscription",
    ),
    "pull role": Read(
        facts=role_facts,
        label="pull role on {host}",
        ok="the identity has {pulling}",
        missing=Missing(verdict="skipped", text="not found"),
        reader="Reader on the registry",
    ),
    "container group": Read(
        facts=group_facts,
        label="container group {group}",
        ok="exists (provisioning {provisioning}, state {state}); python deploy.py updates it in place",
        missing=Missing(verdict="ok", text="does not exist yet; python deploy.py creates it"),
        reader="Reader on resource group {rg}",
    ),
    "provider": Read(
        facts=provider_facts,
        label="provider Microsoft.ContainerInstance",
        ok="registered in the subscription",
        missing=Missing(verdict="problem", text="not found"),
        reader="Reader on the subscription",
    ),
}
PER_REGISTRY = ("registry", "pull role")  # one line for each registry an image names
LATER = ("pull role",)  # needs the facts of other checks (the identity's principal, the registry's ID)
RULES = (
    Rule(
        check="subnet",
        verdict="problem",
        when=lambda facts: CONTAINER_GROUPS not in facts["services"],
        text="is not delegated to container groups",
        fix=DELEGATE,
    ),
    Rule(
        check="subnet",
        verdict="problem",
        when=lambda facts: facts["others"],
        text="is delegated to {others} too; ACI needs it delegated to container groups only",
        fix=DELEGATE,
    ),
    Rule(
        check="subnet",
        verdict="problem",
        when=lambda facts: facts["held"],
        text="holds {held}: a subnet for container groups can hold nothing else (a registry's private endpoint "
        "there makes the deployment fail); give the groups a subnet of their own",
        fix=NEW_SUBNET,
    ),
    Rule(
        check="subnet",
        verdict="warning",
        when=lambda facts: facts["size"] >= 29,
        text="is a /{size}: ACI's documentation asks for /28 or larger",
    ),
    Rule(
        check="subnet",
        verdict="warning",
        when=lambda facts: not facts["nat"],
        text="has no NAT gateway: the containers have no supported way out to the internet (nothing to do if they "
        "need none)",
    ),
    Rule(
        check="network",
        verdict="problem",
        when=lambda facts: facts["location"] != facts["wanted"],
        text="is in {location}, but AZURE_LOCATION is {wanted}: a group goes in its network's region",
        fix="set AZURE_LOCATION={location}, or use a subnet in {wanted}",
    ),
    Rule(
        check="identity",
        verdict="problem",
        when=lambda facts: facts["isolation"] == "Regional" and facts["location"] != facts["wanted"],
        text="has isolation scope Regional in {location}: it can be attached only in {location}, not {wanted}",
        fix="use an identity in {wanted}, or one whose isolation scope is None",
    ),
    Rule(
        check="registry",
        verdict="warning",
        when=lambda facts: facts["sku"] != "Premium",
        text="is {sku}: pulls can work, but network rules and private endpoints need Premium",
        fix="az acr update --name {name} --sku Premium",
    ),
    Rule(
        check="registry",
        verdict="problem",
        when=lambda facts: facts["locked"] and facts["bypass"] != "AzureServices",
        text="denies public access and does not let trusted Microsoft services in, so ACI cannot pull",
        fix="az acr update --name {name} --allow-trusted-services true",
    ),
    Rule(
        check="pull role",
        verdict="problem",
        when=lambda facts: not facts["pulling"],
        text="the identity (principal {principal}) has no role that pulls from {registry} in {modes} mode{ignored}",
        fix="az role assignment create --assignee-object-id {principal} --assignee-principal-type ServicePrincipal "
        '--role "{role}" --scope {registry_id}',
    ),
    Rule(
        check="pull role",
        verdict="warning",
        when=lambda facts: facts["pulling"] and facts["conditions"],
        text="{pulling} is assigned with a condition that may not let the identity read {repositories}: {conditions}",
        fix="az role assignment list --assignee {principal} --scope {registry_id} --query [].condition",
    ),
    Rule(
        check="pull role",
        verdict="warning",
        when=lambda facts: facts["pulling"] and facts["fresh"],
        text="{pulling} was assigned {age} minutes ago: a role assignment can take up to 30 minutes to apply; run "
        "again after that",
    ),
    Rule(
        check="container group",
        verdict="warning",
        when=lambda facts: facts["changed"],
        text="exists, and Azure cannot change these in place: {changed}",
        fix="python deploy.py --recreate",
    ),
    Rule(
        check="provider",
        verdict="problem",
        when=lambda facts: not facts["offered"],
        text="does not offer container groups in {wanted}; the closest region that does is {closest}",
        fix="set AZURE_LOCATION={closest}, with a virtual network in that region",
    ),
    Rule(
        check="provider",
        verdict="problem",
        when=lambda facts: facts["registration"] != "Registered",
        text="is {registration} in this subscription",
        fix="az provider register --namespace Microsoft.ContainerInstance",
    ),
)
# After a failed deployment, the checks that bear on its error code or event.
BEARING = {
    "InaccessibleImage": ("identity", "registry", "pull role"),
    "Failed": ("identity", "registry", "pull role"),
    "SubnetMissingRequiredDelegation": ("subnet", "network"),
    "InvalidSubnetId": ("subnet", "network"),
    "Waiting": ("subnet", "network"),
}
NEW_GROUP_NEEDS = ("subnet", "network", "identity", "registry", "pull role")  # read before --recreate deletes


def run_checks(get: Callable, settings: Settings, checks=tuple(READS), verbose: bool = False) -> list[tuple]:
    """(verdict, label, text, fix) for each check named, in READS' order. The first read signs in alone;
    then the ones that need nothing else run at the same time, and the pull roles last."""
    hosts = registry_servers([c.image for c in settings.containers + settings.init_containers])
    jobs = [(check, host) for check in READS if check in checks for host in (hosts if check in PER_REGISTRY else [""])]
    subnet, identity = parse_resource_id(settings.subnet_id), parse_resource_id(settings.identity_id)
    names = {
        "subnet": subnet.get("child_name_1", ""),
        "vnet": subnet.get("name", ""),
        "subnet_id": settings.subnet_id,
        "vnet_group": subnet.get("resource_group", ""),
        "identity": identity.get("name", ""),
        "identity_group": identity.get("resource_group", ""),
        "group": settings.container_group_name,
        "rg": settings.resource_group,
        "wanted": settings.location,
    }
    found: dict = {"listing": threading.Lock()}

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
        return [(read.missing.verdict, label, read.missing.text, read.missing.fix.format(**names))]
    if isinstance(facts, Skipped):
        custom = f", or a custom role with {facts.action}" if facts.action else ""
        role = (
            f"; the read-only role that lets it run: {read.reader.format(**names)}{custom}"
            if facts.status == 403
            else ""
        )
        return [("skipped", label, f"{facts}{role}", "")]
    facts = {**names, **facts}
    found = [
        (rule.verdict, label, rule.text.format(**facts), rule.fix.format(**facts))
        for rule in RULES
        if rule.check == check and rule.when(facts)
    ]
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


def explain(causes: list[str], settings: Settings, args: argparse.Namespace, get: Callable | None) -> None:
    """After a failed deployment: the checks that bear on its cause, printed under the error. get: the run's
    reader (None: the run never signed in)."""
    checks = next((BEARING[cause] for cause in causes if cause in BEARING), ()) if get else ()
    try:
        findings = run_checks(get, settings, checks) if checks else []
    except (HttpResponseError, ValueError) as error:  # a new token was refused: the error above stands alone
        findings = [("skipped", "checks", f"could not sign in to read them ({error})", "")]
    except KeyboardInterrupt:  # Ctrl-C while reading: the error above is the answer
        return
    if findings:
        say(f"What deploy.py read about it ({command(args, '--check')} checks everything):")
        for line in finding_lines(findings, settings, args):
            say("  " + line)
