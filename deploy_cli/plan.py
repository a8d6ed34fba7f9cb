"""Comparing the group deploy.py would send with the live group, and what a deploy does about it."""

import shlex
from typing import NamedTuple

from azure.mgmt.containerinstance.models import Container, ContainerGroup, InitContainerDefinition

from deploy import Settings, build_container_group
from deploy_cli.containers import init_prefix, prefix_of

SECURE = "(secure value)"
NONE = "(none)"
AZURE_DNS = "168.63.129.16"  # FACTS: ACI adds Azure DNS after the servers the group names
# What Azure refuses to change in place (FACTS, "Updating an existing group": InvalidContainerGroupUpdate), and ARM
# a resource's location; CPU and memory for each container the live group and the settings both have.
REFUSED = ("AZURE_LOCATION", "OS type", "ACI_RESTART_POLICY", "ACI_SUBNET_ID")
REFUSED_PER_CONTAINER = ("CPU", "MEMORY_GB")
CASELESS = ("AZURE_LOCATION", "ACI_SUBNET_ID", "ACI_IDENTITY_ID", "registry credentials")  # ARM compares IDs so
IN_PROGRESS = ("Pending", "Creating", "Updating", "Repairing")  # provisioning states on the way to an outcome
# A group in one of these states has ended: Azure deploys it as new (FACTS, "A finished or stopped group").
ENDED = ("Succeeded", "Failed", "Stopped", "Terminated")


class Difference(NamedTuple):
    """One setting whose live value is not what the settings say."""

    setting: str
    live: str
    wanted: str
    refused: bool  # Azure cannot change it in place

    def line(self) -> str:
        if SECURE in (self.live, self.wanted) and NONE not in (self.live, self.wanted):
            return f"{self.setting}: changed or not: cannot be read back"
        return f"{self.setting}: {self.live} -> {self.wanted}"


class Plan(NamedTuple):
    """What a deploy does: create, nothing, update, refused or new; the sentence that says it; the differences."""

    action: str
    says: str
    differences: list[Difference]

    def lines(self) -> list[str]:
        return [self.says] + [f"  {difference.line()}" for difference in self.differences]


def container_view(prefix: str, container: Container | InitContainerDefinition) -> dict[str, str]:
    """One container's settings as text: what the settings say, or what GET answers."""
    view = {prefix + "IMAGE": container.image, prefix + "COMMAND": shlex.join(container.command or [])}
    for variable in container.environment_variables or []:
        if variable.value is not None:
            view[f"{prefix}ENV_{variable.name}"] = variable.value
        else:  # Azure never returns a secure value: only its name
            view[f"{prefix}SECURE_ENV_{variable.name}"] = SECURE
    if isinstance(container, Container):  # app containers only: init containers take none of these
        requests = container.resources.requests
        view[prefix + "CPU"], view[prefix + "MEMORY_GB"] = f"{requests.cpu:g}", f"{requests.memory_in_gb:g}"
        view[prefix + "PORTS"] = ", ".join(str(port) for port in sorted({p.port for p in container.ports or []}))
    return view


def settings_view(group: ContainerGroup, group_name: str) -> dict[str, str]:
    """A group as the settings that make it, by variable name: the body deploy.py sends, or the live group.
    What Azure adds (instance views, states, sku, the IP, empty lists, Azure DNS) has no name here."""
    identities = (group.identity.user_assigned_identities or {}) if group.identity else {}
    mounts = {m.mount_path for c in group.containers for m in c.volume_mounts or []}
    servers = [s for s in (group.dns_config.name_servers if group.dns_config else []) or [] if s != AZURE_DNS]
    view = {
        "AZURE_LOCATION": (group.location or "").replace(" ", ""),
        "OS type": group.os_type or "",
        "ACI_RESTART_POLICY": group.restart_policy or "Always",
        "ACI_SUBNET_ID": ", ".join(sorted(subnet.id for subnet in group.subnet_ids or [])),
        "ACI_IDENTITY_ID": ", ".join(sorted(identities)),
        "registry credentials": ", ".join(
            sorted(f"{c.server} as {c.identity or c.username}" for c in group.image_registry_credentials or [])
        ),
        "ACI_DNS_SERVERS": ", ".join(servers),
        "ACI_SHARED_DIR": ", ".join(sorted(mounts)),
    }
    for container in group.containers or []:
        view.update(container_view(prefix_of(container, group_name), container))
    for container in group.init_containers or []:
        view.update(container_view(init_prefix(container.name), container))
    return view


def differences(live: ContainerGroup, settings: Settings) -> list[Difference]:
    """Every setting whose live value differs from what the settings say, in the settings' order."""
    name = settings.container_group_name
    was, wanted = settings_view(live, name), settings_view(build_container_group(settings), name)
    both = {prefix_of(c, name) for c in live.containers or []} & {prefix_of(c, name) for c in settings.containers}
    found = []
    for setting in dict.fromkeys([*wanted, *was]):
        old, new = was.get(setting, NONE) or NONE, wanted.get(setting, NONE) or NONE
        same = old.lower() == new.lower() if setting in CASELESS else old == new
        if same and new != SECURE:
            continue
        fixed = setting in REFUSED or any(setting == p + s for p in both for s in REFUSED_PER_CONTAINER)
        found.append(Difference(setting, old, new, fixed))
    return found


def changed_settings(live: ContainerGroup, settings: Settings) -> list[str]:
    """The settings Azure cannot change in place whose live value differs, as NAME: live -> wanted."""
    return [difference.line() for difference in differences(live, settings) if difference.refused]


def plan(live: ContainerGroup | None, settings: Settings) -> Plan:
    """What a deploy does with the live group (None: there is none), in the words it says it."""
    name = settings.container_group_name
    if live is None:
        return Plan("create", f"container group {name} does not exist: a deploy creates it", [])
    found = differences(live, settings)
    refused = [difference for difference in found if difference.refused]
    secure = [difference for difference in found if difference.live == difference.wanted == SECURE]
    changed = [difference for difference in found if not difference.refused and difference not in secure]
    state = live.instance_view.state if live.instance_view else None
    if refused:
        return Plan("refused", f"Azure cannot change these settings of {name} in place:", refused)
    if state in ENDED and live.provisioning_state != "Failed":
        says = f"container group {name} has {'stopped' if state == 'Stopped' else 'finished'} (state {state}): a "
        return Plan("new", says + "deploy deploys it as new", changed)
    if changed:
        says = f"a deploy updates {name} in place; its containers restart, and its private IP may change:"
        return Plan("update", says, changed + secure)
    if secure:
        says = (
            f"nothing differs that Azure returns, but secure values cannot be read back from Azure: a deploy sends "
            f"{name} again, and its containers restart:"
        )
        return Plan("update", says, secure)
    if live.provisioning_state in IN_PROGRESS:  # a run that gave up waiting left it so: sending again restarts it
        says = f"container group {name} is already as configured, and Azure is still deploying it (provisioning "
        return Plan("pending", says + f"{live.provisioning_state}); nothing sent", [])
    if live.provisioning_state != "Succeeded":
        says = f"container group {name} is {live.provisioning_state} in Azure: a deploy sends it again"
        return Plan("update", says, [])
    return Plan("nothing", f"container group {name} is already as configured; nothing sent, nothing restarted", [])
