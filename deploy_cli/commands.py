"""What each command does (dry run, deploy, --plan, --restart, recreate, delete) and each outcome's exit code."""

import argparse
import dataclasses
import functools
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import ContainerGroup

from deploy import ContainerSettings, Settings, build_container_group, create_or_update, delete, wait
from deploy_cli.hints import (
    command,
    error_code,
    event_names,
    follow_it,
    report_error,
    report_unreachable,
    still_exists,
    unreachable,
    warning_events,
)
from deploy_cli.plan import Plan, changed_settings, plan
from deploy_cli.progress import Progress, instance_views, say, settle, show_logs, summary

SECURE_PLACEHOLDER = "<secure value not shown>"


@dataclasses.dataclass
class Azure:
    """The ARM client and --check's reader, both signed in with the run's one credential."""

    client: ContainerInstanceManagementClient
    credential: TokenCredential
    settings: Settings

    @functools.cached_property
    def read(self) -> Callable[..., dict]:
        from deploy_cli.reads import arm_reader  # as checks() below: only a run that reads needs it

        return arm_reader(self.settings, self.credential)


def checks():
    """The checks of --check, loaded when a run reads what the deployment depends on: a deploy that succeeds
    never does, and starts sooner without them."""
    from deploy_cli import check

    return check


@dataclasses.dataclass
class Watch:
    """What the run sent (a PUT or DELETE: Azure has it) and saw: what the report of a timeout or Ctrl-C needs."""

    deadline: float  # time.monotonic() when --timeout runs out: it bounds the whole run, the settle watch too
    sent: set[str] = dataclasses.field(default_factory=set)  # the HTTP methods that went out
    host: str = ""  # the host of the last request that went out
    answered: threading.Event = dataclasses.field(default_factory=threading.Event)  # ARM has answered once
    arm_host: str = ""
    progress: Progress = dataclasses.field(default_factory=Progress)

    def note(self, record: logging.LogRecord) -> bool:
        """A filter on azure-core's HTTP log: what went out, and whether ARM has answered yet."""
        message = record.getMessage()
        self.sent.update(re.findall(r"Request method: '(\w+)'", message))
        url = re.search(r"Request URL: '([^']+)'", message)
        self.host = urlsplit(url[1]).netloc if url else self.host
        if message.startswith("Response status") and self.host == self.arm_host:
            self.answered.set()
        return True

    def settle(self, args: argparse.Namespace) -> float:
        """The seconds of the settle watch: --settle, or what --timeout leaves of it."""
        return max(0.0, min(args.settle, self.deadline - time.monotonic()))


def watch(args: argparse.Namespace) -> Watch:
    """The run's Watch, its deadline from --timeout, noting each request azure-core's HTTP logging policy sees."""
    run = Watch(deadline=time.monotonic() + args.timeout)
    log_requests(args.verbose, run)
    return run


def log_requests(verbose: bool, watch: Watch) -> None:
    """Logging as -v asks; watch notes each request that azure-core's HTTP logging policy sees go out."""
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
    # Azure's INFO logs redact headers and omit bodies; never set logging_enable, which logs both.
    logging.getLogger("azure").setLevel(logging.INFO if verbose else logging.ERROR)
    http_log = logging.getLogger("azure.core.pipeline.policies.http_logging_policy")
    http_log.setLevel(logging.INFO)
    http_log.propagate = verbose  # shown with -v only; the filter always notes what went out
    http_log.addFilter(watch.note)


def bound_the_first_answer(watch: Watch, settings: Settings, args: argparse.Namespace) -> threading.Timer:
    """--timeout bounds sign-in and the first request in all: azure-core waits for each answer and retries, so an
    endpoint that accepts and never answers would hold the run for several times --timeout. Before ARM has
    answered once, nothing but sign-in and reads went out."""
    watch.arm_host = urlsplit(settings.resource_manager_endpoint).netloc

    def expire() -> None:
        if not watch.answered.is_set():
            host = watch.host or urlsplit(settings.authority_host).netloc
            say(f"error: no answer from {host} within --timeout {args.timeout:g} s; nothing was sent to Azure")
            say(f"hint: check the network, DNS, any proxy (HTTPS_PROXY) and the endpoint settings for {host}")
            sys.stdout.flush()
            os._exit(1)  # the thread waiting for the answer cannot be stopped otherwise

    timer = threading.Timer(max(0.0, watch.deadline - time.monotonic()) + 0.5, expire)
    timer.daemon = True
    timer.start()
    return timer


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


def read_live(client: ContainerInstanceManagementClient, settings: Settings) -> ContainerGroup | None:
    """The group as Azure has it now, or None when there is none."""
    try:
        return client.container_groups.get(settings.resource_group, settings.container_group_name)
    except ResourceNotFoundError:
        return None


def outcome(client, settings: Settings, args: argparse.Namespace, group: ContainerGroup, restarted: dict) -> int:
    """The summary on stdout, the end of the log of each container that is not running; the exit code."""
    text, stopped = summary(group)
    print(text, flush=True)  # before the logs on stderr, where both streams share one terminal or pipe
    show_logs(client, settings, {**stopped, **restarted})
    if stopped or restarted:
        still_exists(settings, args)
    return 1 if stopped or restarted else 0


def refuse(found: Plan, args: argparse.Namespace) -> int:
    """A change Azure refuses in place, found before anything was sent."""
    say(f"error: {found.says}")
    for line in found.lines()[1:]:
        say(line)
    say(f"Nothing was sent. To apply them, delete the group and create it anew: {command(args, '--recreate')}; or")
    say(f"  {command(args, '--delete')}, then {command(args)}")
    return 1


def deploy(azure: Azure, settings: Settings, args: argparse.Namespace, watch: Watch) -> int:
    """Compare with the live group; create or update it if anything differs, wait, watch it settle, and show
    the outcome; the exit code. Every PUT restarts the containers, so an unchanged running group is left alone."""
    client, show = azure.client, watch.progress
    live = read_live(client, settings)
    found = plan(live, settings)
    if found.action == "refused":
        return refuse(found, args)
    if found.action != "create":
        for line in found.lines():
            say(line)
    if found.action == "nothing":
        return outcome(client, settings, args, live, {})
    if found.action == "pending":
        print(summary(live)[0])
        say("Run the same command again later to see its outcome, or follow it with az container show.")
        return 4
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
        checks().explain(event_names(events) + [code] * (code != "Failed"), settings, args, azure.read)
        still_exists(settings, args, "still exists in Azure and keeps trying")
        return 1
    show(deployed)  # the outcome's states and events, before the settle watch says it starts
    return outcome(client, settings, args, *settle(client, settings, deployed, watch.settle(args), show))


def show_plan(azure: Azure, settings: Settings, args: argparse.Namespace) -> int:
    """--plan: what a deploy would do, on stdout; 1 when Azure would refuse the change in place."""
    found = plan(read_live(azure.client, settings), settings)
    print("\n".join(found.lines()))
    if found.action == "refused":
        recreate = command(args, "--recreate")
        print(f"A deploy would send nothing; {recreate} deletes the group and creates it anew")
    return 1 if found.action == "refused" else 0


def restart(azure: Azure, settings: Settings, args: argparse.Namespace, watch: Watch) -> int:
    """--restart: ACI's restart operation (no body), which pulls an image again whose tag has moved; then wait,
    settle and report as a deploy does."""
    client, name, group = azure.client, settings.container_group_name, settings.resource_group
    if read_live(client, settings) is None:
        say(f"error: container group {name} does not exist in resource group {group}: deploy it first: {command(args)}")
        return 1
    say(f"Restarting the containers of container group {name} in place ...")
    poller = client.container_groups.begin_restart(group, name)
    watch.sent.add("RESTART")  # from here the restart goes on in Azure
    wait(client, settings, poller, args.timeout, watch.progress)
    restarted = client.container_groups.get(group, name)
    watch.progress(restarted)
    return outcome(client, settings, args, *settle(client, settings, restarted, watch.settle(args), watch.progress))


def recreate(azure: Azure, settings: Settings, args: argparse.Namespace, watch: Watch) -> int:
    """Check what the new group needs; delete the group if it exists, wait until it is gone, then deploy it anew."""
    say("Checking what the new group depends on before deleting the old one ...")
    findings = checks().run_checks(azure.read, settings, checks().NEW_GROUP_NEEDS)
    for line in checks().finding_lines(findings, settings, args):
        say("  " + line)
    if any(verdict == "problem" for verdict, *_ in findings):
        say("error: --recreate stopped before deleting anything: fix the problem above first (nothing was changed)")
        return 1
    name = settings.container_group_name
    gone = delete(
        azure.client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ...")
    )
    left = argparse.Namespace(**{**vars(args), "timeout": watch.deadline - time.monotonic()})
    try:
        code = deploy(azure, settings, left, watch)
    except (Exception, KeyboardInterrupt) as error:  # reported first, then the note on what is gone
        code = report(error, settings, args, watch, azure)
    if gone and code != 0:
        say(f"note: --recreate deleted the old container group {name}: it is gone, and the new one is not running")
    return code


def run(args: argparse.Namespace, azure: Azure, settings: Settings, watch: Watch) -> int:
    """Check, delete, recreate or deploy, as asked; the exit code."""
    name = settings.container_group_name
    if args.mode == "check":
        return checks().check(azure.read, settings, args)
    if args.mode == "plan":
        return show_plan(azure, settings, args)
    if args.mode == "restart":
        return restart(azure, settings, args, watch)
    if args.mode == "delete":
        deleted = delete(
            azure.client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ...")
        )
        print(f"container group {name}: {'deleted' if deleted else 'does not exist, nothing to delete'}")
        return 0
    return (recreate if args.mode == "recreate" else deploy)(azure, settings, args, watch)


def report(error: BaseException, settings: Settings, args: argparse.Namespace, watch: Watch, azure: Azure) -> int:
    """What went wrong, in the reader's terms, and its exit code; re-raises what it does not know. azure: the
    run's client and reader, for the checks that bear on the error."""
    sent = bool(watch.sent & {"PUT", "DELETE", "RESTART"})
    if isinstance(error, TimeoutError | KeyboardInterrupt):
        timeout = isinstance(error, TimeoutError)
        say(f"error: gave up waiting after {args.timeout:g} s (--timeout)." if timeout else "interrupted.")
        if args.mode in ("check", "plan"):  # it only reads
            return 4 if timeout else 130
        what = {"delete": "deletion", "restart": "restart"}.get(args.mode, "deployment")
        say(f"The {what} goes on in Azure." if sent else f"The {what} was not started: nothing was sent to Azure.")
        if sent:
            last = watch.progress.last  # the group as the wait last saw it
            views = instance_views(last) if last else []
            states = [getattr(getattr(view, "current_state", None), "state", "") for _, view in views]
            # A container seen waiting at the timeout may wait for the network (INTERFACE); nothing seen, nothing read.
            checks().explain(["Waiting"] if timeout and "Waiting" in states else [], settings, args, azure.read)
            follow_it(settings, args)
        return 4 if timeout else 130
    if isinstance(error, ClientAuthenticationError) and unreachable(error):  # not a problem with the credentials
        report_unreachable(unreachable(error), settings.authority_host)
        say("Nothing was sent to Azure.")
        return 1
    if isinstance(error, HttpResponseError):
        report_error(error, settings, args)
        if args.mode in ("deploy", "recreate") and not isinstance(error, ClientAuthenticationError):
            checks().explain([error_code(error)], settings, args, azure.read)
        return 3 if isinstance(error, ClientAuthenticationError) or error.status_code == 403 else 1
    if isinstance(error, ServiceRequestError | ServiceResponseError):  # after azure-core's retries
        report_unreachable(error, settings.resource_manager_endpoint)
        return 1
    raise error
