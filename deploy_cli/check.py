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


