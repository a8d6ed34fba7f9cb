"""What each command does (dry run, deploy, recreate, delete) and how each outcome becomes an exit code."""

import argparse
import dataclasses
import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import NamedTuple

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from deploy import ContainerSettings, Settings, build_container_group, create_or_update, delete
from deploy_cli.check import NEW_GROUP_NEEDS, check, explain, finding_lines, run_checks
from deploy_cli.hints import (
    error_code,
    event_names,
    report_error,
    report_unreachable,
    still_exists,
    unreachable,
    warning_events,
)
from deploy_cli.plan import changed_settings
from deploy_cli.progress import Progress, instance_views, say, settle, show_logs, summary

SECURE_PLACEHOLDER = "<secure value not shown>"


class Azure(NamedTuple):
    """The ARM client and --check's reader, both signed in with the run's one credential."""

    client: ContainerInstanceManagementClient
    read: Callable[..., dict]


@dataclasses.dataclass
class Watch:
    """What the run sent (a PUT or DELETE: Azure has it) and saw: what the report of a timeout or Ctrl-C needs."""

    sent: set[str]
    progress: Progress = dataclasses.field(default_factory=Progress)


def log_requests(verbose: bool) -> set[str]:
    """Logging as -v asks; the set that azure-core's HTTP logging policy fills with each method that goes out."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    # Azure's INFO logs redact headers and omit bodies; never set logging_enable, which logs both.
    logging.getLogger("azure").setLevel(logging.INFO if verbose else logging.ERROR)
    http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    http_log.setLevel(logging.INFO)
    http_log.propagate = verbose  # shown with -v only; the filter always notes what went out
    sent: set[str] = set()
    http_log.addFilter(lambda record: sent.update(re.findall(r"Request method: '(\w+)'", record.getMessage())) or 1)
    return sent


def dry_run_body(settings: Settings) -> dict:
    """The exact JSON that ARM would receive, secure values replaced by a placeholder."""

    def masked(containers: tuple[ContainerSettings, ...]) -> tuple[ContainerSettings, ...]:
        hidden = [dict.fromkeys(c.secure_environment, SECURE_PLACEHOLDER) for c in containers]
        return tuple(dataclasses.replace(c, secure_environment=h) for c, h in zip(containers, hidden, strict=True))

    hidden = {"containers": masked(settings.containers), "init_containers": masked(settings.init_containers)}
    return build_container_group(dataclasses.replace(settings, **hidden)).serialize()


def dry_run(settings: Settings) -> int:
    print(json.dumps(dry_run_body(settings), indent=2))
    say(f"dry run: the body of PUT .../containerGroups/{settings.container_group_name}; nothing was sent")
    return 0


def deploy(azure: Azure, settings: Settings, args: argparse.Namespace, watch: Watch) -> int:
    """Create or update the group, wait, watch it settle, and show the outcome; the exit code."""
    client, show = azure.client, watch.progress
    say(
        f"Deploying container group {settings.container_group_name} in resource group {settings.resource_group} "
        f"({settings.location}) ..."
    )
    try:
        deployed = create_or_update(client, settings, args.timeout, on_progress=show)
    except HttpResponseError as error:
        if error_code(error) == "InvalidContainerGroupUpdate":  # the live group says what cannot change
            live = client.container_groups.get(settings.resource_group, settings.container_group_name)
            report_error(error, settings, args, details=changed_settings(live, settings))
            return 1
        if error.response is None or error.response.request.method == "PUT":
            raise  # Azure refused the request itself: no group was made or changed
        events = warning_events(client, settings)  # accepted, then failed
        report_error(error, settings, args, events=events)
        code = error_code(error)  # "Failed" is any failed operation: the events say which
        explain(event_names(events) + [code] * (code != "Failed"), settings, args, azure.read)
        still_exists(settings, args, "still exists in Azure and keeps trying")
        return 1
    deployed, restarted = settle(client, settings, deployed, args.settle, show)
    text, stopped = summary(deployed)
    print(text)
    show_logs(client, settings, {**stopped, **restarted})
    if stopped or restarted:
        still_exists(settings, args)
    return 1 if stopped or restarted else 0


def recreate(azure: Azure, settings: Settings, args: argparse.Namespace, watch: Watch) -> int:
    """Check what the new group needs; delete the group if it exists, wait until it is gone, then deploy it anew."""
    deadline = time.monotonic() + args.timeout
    say("Checking what the new group depends on before deleting the old one ...")
    findings = run_checks(azure.read, settings, NEW_GROUP_NEEDS)
    for line in finding_lines(findings, settings, args):
        say("  " + line)
    if any(verdict == "problem" for verdict, *_ in findings):
        say("error: --recreate stopped before deleting anything: fix the problem above first (nothing was changed)")
        return 1
    name = settings.container_group_name
    gone = delete(
        azure.client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ...")
    )
    left = argparse.Namespace(**{**vars(args), "timeout": deadline - time.monotonic()})
    try:
        code = deploy(azure, settings, left, watch)
    except (Exception, KeyboardInterrupt) as error:  # reported first, then the note on what is gone
        code = report(error, settings, args, watch, azure.read)
    if gone and code != 0:
        say(f"note: --recreate deleted the old container group {name}: it is gone, and the new one is not running")
    return code


def run(args: argparse.Namespace, azure: Azure, settings: Settings, watch: Watch) -> int:
    """Check, delete, recreate or deploy, as asked; the exit code."""
    name = settings.container_group_name
    if args.mode == "check":
        return check(azure.read, settings, args)
    if args.mode == "delete":
        deleted = delete(
            azure.client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ...")
        )
        print(f"container group {name}: {'deleted' if deleted else 'does not exist, nothing to delete'}")
        return 0
    return (recreate if args.mode == "recreate" else deploy)(azure, settings, args, watch)


def report(error: BaseException, settings: Settings, args: argparse.Namespace, watch: Watch, read: Callable) -> int:
    """What went wrong, in the reader's terms, and its exit code; re-raises what it does not know. read: the
    run's reader, for the checks that bear on the error (None: not signed in)."""
    sent = bool(watch.sent & {"PUT", "DELETE"})
    if isinstance(error, TimeoutError | KeyboardInterrupt):
        timeout = isinstance(error, TimeoutError)
        say(f"error: gave up waiting after {args.timeout:g} s (--timeout)." if timeout else "interrupted.")
        if args.mode == "check":  # it only reads
            return 4 if timeout else 130
        what = "deletion" if args.mode == "delete" else "deployment"
        say(f"The {what} goes on in Azure." if sent else f"The {what} was not started: nothing was sent to Azure.")
        if sent:
            last = watch.progress.last  # the group as the wait last saw it
            views = instance_views(last) if last else []
            states = [getattr(getattr(view, "current_state", None), "state", "") for _, view in views]
            waiting = "Waiting" in states or not views  # not seen yet: before its first state, it waits
            explain(["Waiting"] if timeout and waiting else [], settings, args, read)
            still_exists(settings, args, "is in Azure")
        return 4 if timeout else 130
    if isinstance(error, ClientAuthenticationError) and unreachable(error):  # not a problem with the credentials
        report_unreachable(unreachable(error), settings.authority_host)
        say("Nothing was sent to Azure.")
        return 1
    if isinstance(error, HttpResponseError):
        report_error(error, settings, args)
        if args.mode in ("deploy", "recreate") and not isinstance(error, ClientAuthenticationError):
            explain([error_code(error)], settings, args, read)
        return 3 if isinstance(error, ClientAuthenticationError) or error.status_code == 403 else 1
    if isinstance(error, ServiceRequestError | ServiceResponseError):  # after azure-core's retries
        report_unreachable(error, settings.resource_manager_endpoint)
        return 1
    raise error
