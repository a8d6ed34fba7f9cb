"""Comparing the group deploy.py would send with the live group."""

from azure.mgmt.containerinstance.models import ContainerGroup

from deploy import Settings, build_container_group
from deploy_cli.containers import prefix_of


def changed_settings(live: ContainerGroup, settings: Settings) -> list[str]:
    """The settings Azure cannot change in place whose live value differs, as NAME: live -> wanted."""

    def fixed(group: ContainerGroup) -> dict[str, str]:
        found = {}
        for container in group.containers:  # CPU and memory per app container, named by its settings prefix
            prefix, requests = prefix_of(container, settings.container_group_name), container.resources.requests
            found.update({prefix + "CPU": f"{requests.cpu:g}", prefix + "MEMORY_GB": f"{requests.memory_in_gb:g}"})
        return {
            **found,
            "ACI_RESTART_POLICY": group.restart_policy or "Always",
            "ACI_SUBNET_ID": ", ".join(subnet.id for subnet in group.subnet_ids or []) or "none",
            "OS type": group.os_type,
        }

    was, wanted = fixed(live), fixed(build_container_group(settings))
    return [
        f"{name}: {was[name]} -> {wanted[name]}"
        for name in wanted
        if was.get(name, wanted[name]).lower() != wanted[name].lower()
    ]
