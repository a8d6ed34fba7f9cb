"""What the wait shows: state changes and events as they happen, the summary, the settle watch, logs."""

import sys
import time
from collections.abc import Callable

from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import ContainerGroup

from deploy import PROGRESS_SECONDS, Settings

LOG_LINES = 20  # how much of a stopped container's log is shown


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def instance_views(group: ContainerGroup) -> list:
    containers = (group.init_containers or []) + (group.containers or [])
    views = [("group", group.instance_view)] + [(container.name, container.instance_view) for container in containers]
    return [(owner, view) for owner, view in views if view is not None]


def in_time_order(events: list | None) -> list:
    """Azure lists events in no particular order, and a different one each time."""
    return sorted(events or [], key=lambda event: (event.first_timestamp is None, event.first_timestamp))


def progress_lines(group: ContainerGroup, shown: dict) -> list[str]:
    """Lines for states that changed and events not shown yet; shown remembers what was printed."""
    lines = {("provisioning",): f"provisioning: {group.provisioning_state}"}
    for owner, view in instance_views(group):
        current = getattr(view, "current_state", None)  # containers have a current_state, the group a state
        state = current.state if current else getattr(view, "state", None)
        if state:
            detail = f" ({current.detail_status})" if current and current.detail_status else ""
            lines[(owner, "state")] = f"{owner}: {state}{detail}"
        for event in in_time_order(view.events):
            key = (owner, event.name, event.message, event.first_timestamp)
            lines[key] = f"{owner}: {event.type} event {event.name}: {event.message}"
    new = [line for key, line in lines.items() if shown.get(key) != line]
    shown.update(lines)
    return new


class Progress:
    """Prints the state changes and new events of each read of the group, and keeps the group as last read: the
    report after a timeout says what it was waiting for."""

    def __init__(self) -> None:
        self.shown: dict = {}
        self.last: ContainerGroup | None = None

    def __call__(self, group: ContainerGroup) -> None:
        self.last = group
        for line in progress_lines(group, self.shown):
            say("  " + line)


def summary(group: ContainerGroup) -> tuple[str, dict[str, str]]:
    """The result for stdout, and the containers that should be running and are not (name: state)."""
    view, ip = group.instance_view, group.ip_address
    ports = ", ".join(f"{port.port}/{port.protocol or 'TCP'}" for port in ip.ports or []) if ip else ""
    lines = [
        f"container group:    {group.name}",
        f"provisioning state: {group.provisioning_state}",
        f"group state:        {view.state if view else 'unknown'}",
        f"private IP:         {ip.ip if ip and ip.ip else 'not assigned'} ({ports})",
    ]
    stopped = {}
    for kind, containers in (("init container", group.init_containers or []), ("container", group.containers)):
        for container in containers:
            current = container.instance_view.current_state if container.instance_view else None
            state = current.state if current else "unknown"
            restarts = container.instance_view.restart_count if container.instance_view else 0
            exit_code = f", exit code {current.exit_code}" if current and current.exit_code is not None else ""
            lines.append(f"{kind} {container.name}: {state}{exit_code}, restarts {restarts or 0}")
            # An init container, and an app container that is not restarted, are done when they exit with 0.
            run_once = kind == "init container" or group.restart_policy != "Always"
            previous = container.instance_view.previous_state if container.instance_view else None
            if state != "Running" and not (run_once and state == "Terminated" and current.exit_code == 0):
                detail = f" ({current.detail_status})" if current and current.detail_status else ""
                if previous and previous.exit_code is not None:  # restarted: how it ended last time
                    detail += f"; it last exited with code {previous.exit_code}"
                last = previous if previous and previous.exit_code is not None else current
                if last and last.state == "Terminated" and last.exit_code == 0 and not run_once:  # Always: again
                    detail += "; ACI_RESTART_POLICY=Always restarts it: a run-once job wants Never or OnFailure"
                stopped[container.name] = f"{state}{exit_code}{detail}"
    return "\n".join(lines), stopped


def show_logs(client: ContainerInstanceManagementClient, settings: Settings, stopped: dict[str, str]) -> None:
    group = f"-g {settings.resource_group} -n {settings.container_group_name}"
    for name, state in stopped.items():
        say(f"error: provisioning succeeded, but container {name} is {state}. The end of its log:")
        try:
            content = client.containers.list_logs(
                settings.resource_group, settings.container_group_name, name, tail=LOG_LINES
            ).content
            for line in (content or "(empty)").splitlines()[-LOG_LINES:]:
                say(f"  | {line}")
        except HttpResponseError as error:
            say(f"  (its log cannot be read: {error.error.code if error.error else error.status_code})")
        say(f"  whole log: az container logs {group} --container-name {name}")


def restarts(group: ContainerGroup) -> dict[str, int]:
    return {c.name: (c.instance_view.restart_count or 0) if c.instance_view else 0 for c in group.containers}


def settle(
    client: ContainerInstanceManagementClient,
    settings: Settings,
    group: ContainerGroup,
    seconds: float,
    show: Callable[[ContainerGroup], None],
):
    """Watch the containers for seconds after Succeeded, which only means that they got to Running once:
    the group as last read, and the containers that restarted meanwhile (name: what happened)."""
    before, deadline = restarts(group), time.monotonic() + seconds
    finished = ("Succeeded", "Failed", "Stopped")  # a run-once group whose containers are done

    def settled(group: ContainerGroup) -> bool:  # nothing left to watch: a container is down, or all are done
        return bool(summary(group)[1]) or bool(group.instance_view and group.instance_view.state in finished)

    if seconds > 0 and not settled(group):
        say(f"Watching the containers for {seconds:g} s (--settle) ...")
    while time.monotonic() < deadline and not settled(group):
        time.sleep(max(0.0, min(PROGRESS_SECONDS, deadline - time.monotonic())))
        group = client.container_groups.get(settings.resource_group, settings.container_group_name)
        show(group)
        grew = {
            name: f"restarting: {before[name]} -> {n} restarts during --settle"
            for name, n in restarts(group).items()
            if n > before.get(name, n)
        }
        if grew:
            return group, grew
    return group, {}
