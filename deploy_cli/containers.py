"""The app, sidecar and init containers from their prefixes, and the rules that span the group."""

import re

from azure.mgmt.containerinstance.models import Container

from deploy import ContainerSettings, registry_servers
from deploy_cli.settings import BY_NAME, ENV, EXAMPLES, SECURE_ENV, clean, parsed
from deploy_cli.values import MAX_PORTS, image_reference

# Ports ACI documents as reserved ("avoid"): groups that open them can stay Waiting.
RESERVED_PORTS = [range(22, 23), range(1025, 1028), range(3389, 3400), range(9999, 10000), range(19000, 19001)]
RESERVED_PORTS += [range(19080, 19081), range(19100, 19101), range(19390, 19391), range(20000, 30001)]
RESERVED_PORTS += [range(49152, 65535)]
# A group's CPU and memory are the sums over its app containers: ACI's maximum per group, and the size
# above which a group may fail for lack of regional capacity.
GROUP_MAXIMUM, CAPACITY_WARNING = {"CPU": 31, "MEMORY_GB": 240}, {"CPU": 4, "MEMORY_GB": 16}


# Container settings: what follows the prefix, and the ones only app containers take (ACI gives init
# containers the whole group's CPU and memory, and no ports).
SUFFIXES = ("IMAGE", "CPU", "MEMORY_GB", "PORTS", "COMMAND")
APP_ONLY = {"CPU": "CPU", "MEMORY_GB": "memory", "PORTS": "ports"}
KNOWN_SUFFIX = rf"(?:{'|'.join(SUFFIXES)}|(?:{SECURE_ENV}|{ENV}).+)"
SIDECAR = re.compile(rf"ACI_SIDECAR_(?P<name>.+?)_(?P<suffix>{KNOWN_SUFFIX})")
NUMBERED_INIT = re.compile(rf"ACI_INIT_(?P<number>\d+)_(?P<suffix>{KNOWN_SUFFIX})")
UNKNOWN_CONTAINER_SETTING = re.compile(r"(ACI_SIDECAR_[A-Za-z0-9]+_|ACI_INIT_\d+_)")


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
            problems.append(
                f"{key} is set, but init containers take no {APP_ONLY[suffix]}: ACI gives them the "
                "whole group's CPU and memory while they run, and no ports; remove it"
            )
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


def check_names(sidecars: dict[str, list[str]], numbered: dict[int, set[str]], problems: list[str]) -> None:
    """A sidecar's name is letters and digits; a numbered init container is 2 or more, written one way."""
    for name, keys in sidecars.items():
        if not re.fullmatch(r"[A-Za-z0-9]{1,63}", name):
            problems.append(
                f"{', '.join(keys)}: the sidecar name {name!r} must be 1-63 letters and digits (no _ or -); for "
                "example ACI_SIDECAR_LOGS_IMAGE"
            )
    for number, texts in sorted(numbered.items()):
        if len(texts) > 1:
            written = " and ".join(f"ACI_INIT_{text}_..." for text in sorted(texts))
            problems.append(f"{written} are both init container {number}: write its number one way, such as {number}")
        elif number < 2:
            problems.append(f"ACI_INIT_{number}_...: numbered init containers start at 2; ACI_INIT_IMAGE is the first")


def container_settings(variables: dict[str, str], group_name: str, problems: list[str], secrets: set[str]) -> dict:
    """The app containers (the main one, then the sidecars by name) and the init containers in order."""
    sidecars: dict[str, list[str]] = {}  # sidecar name -> its variables, as typed
    numbered: dict[int, set[str]] = {}  # init container number -> how it is written (3, 03)
    for key in sorted(variables):
        if sidecar := SIDECAR.fullmatch(key):
            sidecars.setdefault(sidecar["name"], []).append(key)
        elif init := NUMBERED_INIT.fullmatch(key):
            numbered.setdefault(int(init["number"]), set()).add(init["number"])
    check_names(sidecars, numbered, problems)
    app = [("ACI_", group_name)] + [(f"ACI_SIDECAR_{n}_", n.lower()) for n in sorted(sidecars) if n.isalnum()]
    inits = [("ACI_INIT_", "init")]
    inits += [(f"ACI_INIT_{min(texts)}_", f"init-{n}") for n, texts in sorted(numbered.items()) if n >= 2]
    found = {
        kind: [c for prefix, name in pairs if (c := container_from(variables, prefix, name, problems, secrets))]
        for kind, pairs in (("containers", app), ("init_containers", inits))
    }
    # A sidecar may not take the name of the main container, an init container or another sidecar.
    taken = {c.name: f"init container {c.name}" for c in found["init_containers"]} | {group_name: "the main container"}
    typed = {name: prefix for prefix, name in app}
    for container in found["containers"][1:]:
        if container.name in taken:
            problems.append(
                f"{typed[container.name]}IMAGE: the sidecar {container.name!r} has the name of "
                f"{taken[container.name]}; give it another name, such as ACI_SIDECAR_LOGS_IMAGE"
            )
        taken.setdefault(container.name, f"the sidecar of {typed[container.name]}IMAGE")
    return {kind: tuple(containers) for kind, containers in found.items()}


def prefix_of(container: ContainerSettings | Container, group_name: str) -> str:
    """The settings prefix of an app container, from its name."""
    return "ACI_" if container.name == group_name else f"ACI_SIDECAR_{container.name.upper()}_"


def init_prefix(name: str) -> str:
    """The settings prefix of an init container: init is ACI_INIT_, init-3 is ACI_INIT_3_."""
    number = name.removeprefix("init").lstrip("-")
    return f"ACI_INIT_{number}_" if number else "ACI_INIT_"


def group_checks(groups: dict, problems: list[str]) -> list[str]:
    """The rules that span the app containers: ports, the group's CPU and memory, registries. Warnings."""
    containers, warnings = groups["containers"], []
    group_name = containers[0].name if containers else ""
    opened: dict[int, str] = {}
    for container in containers:
        for port in container.ports:
            key = prefix_of(container, group_name) + "PORTS"
            if port in opened:
                problems.append(
                    f"{key}: port {port} is opened by {opened[port]} too; containers in a group share one "
                    "network, so each port can be opened by one container only"
                )
            opened.setdefault(port, key)
    if len(opened) > MAX_PORTS:
        keys = ", ".join(dict.fromkeys(opened.values()))
        problems.append(
            f"{keys}: the group's IP opens every app container's ports, at most {MAX_PORTS} in all "
            f"({len(opened)} given)"
        )
    for port in (port for port in opened if any(port in reserved for reserved in RESERVED_PORTS)):
        warnings.append(
            f"{opened[port]}: port {port} is on ACI's list of reserved ports; groups that use it can stay Waiting"
        )
    for suffix, field in (("CPU", "cpu"), ("MEMORY_GB", "memory_in_gb")):
        total = sum(getattr(container, field) for container in containers)
        keys = ", ".join(prefix_of(c, group_name) + suffix for c in containers)
        unit = " GB (memory is in GB, not MB)" if suffix == "MEMORY_GB" else ""
        if total > GROUP_MAXIMUM[suffix]:
            problems.append(
                f"{keys}: {total:g}{unit} in all is above ACI's maximum of {GROUP_MAXIMUM[suffix]} per "
                "group (the app containers' requests add up)"
            )
        elif total > CAPACITY_WARNING[suffix]:
            limits = f"{CAPACITY_WARNING['CPU']} CPU or {CAPACITY_WARNING['MEMORY_GB']} GB"
            warnings.append(
                f"{keys}: {total:g} in all; groups above {limits} may fail for lack of capacity in the region"
            )
    return warnings + registry_checks(groups, problems)


def registry_checks(groups: dict, problems: list[str]) -> list[str]:
    """The registries the images come from: one credential each, and init images that may not pull. Warnings."""
    containers, warnings = groups["containers"], []
    for init in (c for c in groups["init_containers"] if registry_servers([c.image])):
        warnings.append(
            f"{init_prefix(init.name)}IMAGE: {init.image} is in an Azure Container Registry. ACI documents that init "
            "containers cannot use the group's managed identities, and no public report shows such an image pulled "
            "with it: prefer a public image for init containers, or try it first (docs/containers.md)"
        )
    registries = registry_servers([c.image for c in containers + groups["init_containers"]])
    if containers and len(registries) > len(containers):
        problems.append(
            f"the images come from {len(registries)} registries ({', '.join(registries)}) but "
            f"the group has {len(containers)} app container(s): Azure refuses more registry credentials "
            "than containers; import the images into one registry (az acr import)"
        )
    return warnings
