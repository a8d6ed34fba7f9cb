SECURE_PLACEHOLDER = "<secure value not shown>"
SENT: set[str] = set()  # the methods azure-core's HTTP logging policy saw go out (a PUT: Azure has it)


def dry_run_body(settings: Settings) -> dict:
    """The exact JSON that ARM would receive, secure values replaced by a placeholder."""

    def masked(containers: tuple[ContainerSettings, ...]) -> tuple[ContainerSettings, ...]:
        hidden = [dict.fromkeys(c.secure_environment, SECURE_PLACEHOLDER) for c in containers]
        return tuple(dataclasses.replace(c, secure_environment=h) for c, h in zip(containers, hidden, strict=True))

    hidden = {"containers": masked(settings.containers), "init_containers": masked(settings.init_containers)}
    return build_container_group(dataclasses.replace(settings, **hidden)).serialize()


def connect(settings: Settings, make: Callable = create_client):
    """The ARM client (or --check's reader), with a certificate that cannot be used as a usage error."""
    try:
        return make(settings)
    except ValueError as error:  # a certificate that cannot be loaded (wrong password, no private key)
        name = "AZURE_CLIENT_CERTIFICATE_PATH" if settings.sign_in == "certificate" else "the sign-in settings"
        raise UsageError(f"{name} cannot be used: {error} (nothing was sent to Azure)") from None


def deploy(client: ContainerInstanceManagementClient, settings: Settings, args: argparse.Namespace) -> int:
    """Create or update the group, wait, watch it settle, and show the outcome; the exit code."""
    say(f"Deploying container group {settings.container_group_name} in resource group {settings.resource_group} "
        f"({settings.location}) ...")  # fmt: skip
    try:
        show = show_progress()  # one memory of what was shown, for the wait and the settle watch
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
        explain(event_names(events) + [code] * (code != "Failed"), settings, args)
        still_exists(settings, args, "still exists in Azure and keeps trying")
        return 1
    deployed, restarted = settle(client, settings, deployed, args.settle, show)
    text, stopped = summary(deployed)
    print(text)
    show_logs(client, settings, {**stopped, **restarted})
    if stopped or restarted:
        still_exists(settings, args)
    return 1 if stopped or restarted else 0


def recreate(client: ContainerInstanceManagementClient, settings: Settings, args: argparse.Namespace) -> int:
    """Check what the new group needs; delete the group if it exists, wait until it is gone, then deploy it anew."""
    deadline = time.monotonic() + args.timeout
    say("Checking what the new group depends on before deleting the old one ...")
    findings = run_checks(arm_reader(settings), settings, NEW_GROUP_NEEDS)
    for line in finding_lines(findings, settings, args):
        say("  " + line)
    if any(verdict == "problem" for verdict, *_ in findings):
        say("error: --recreate stopped before deleting anything: fix the problem above first (nothing was changed)")
        return 1
    name = settings.container_group_name
    gone = delete(client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ..."))
    try:
        code = deploy(client, settings, argparse.Namespace(**{**vars(args), "timeout": deadline - time.monotonic()}))
    except (Exception, KeyboardInterrupt) as error:  # reported first, then the note on what is gone
        code = report(error, settings, args)
    if gone and code != 0:
        say(f"note: --recreate deleted the old container group {name}: it is gone, and the new one is not running")
    return code


def run(args: argparse.Namespace, client: ContainerInstanceManagementClient, settings: Settings) -> int:
    """Deploy, recreate or delete, as asked; the exit code."""
    name = settings.container_group_name
    if args.check:
        return check(client, settings, args)
    if args.delete:
        deleted = delete(
            client, settings, args.timeout, on_progress=lambda _: say(f"Deleting container group {name} ...")
        )
        print(f"container group {name}: {'deleted' if deleted else 'does not exist, nothing to delete'}")
        return 0
    return (recreate if args.recreate else deploy)(client, settings, args)


def report(error: BaseException, settings: Settings, args: argparse.Namespace) -> int:
    """What went wrong, in the reader's terms, and its exit code; re-raises what it does not know."""
    sent = bool(SENT & {"PUT", "DELETE"})
    if isinstance(error, TimeoutError | KeyboardInterrupt):
        timeout = isinstance(error, TimeoutError)
        say(f"error: gave up waiting after {args.timeout:g} s (--timeout)." if timeout else "interrupted.")
        if args.check:  # it only reads
            return 4 if timeout else 130
        what = "deletion" if args.delete else "deployment"
        say(f"The {what} goes on in Azure." if sent else f"The {what} was not started: nothing was sent to Azure.")
        if sent:
            views = instance_views(SEEN["group"]) if "group" in SEEN else []  # the group as the wait last saw it
            states = [getattr(getattr(view, "current_state", None), "state", "") for _, view in views]
            waiting = "Waiting" in states or not views  # not seen yet: before its first state, it waits
            explain(["Waiting"] if timeout and waiting else [], settings, args)
            still_exists(settings, args, "is in Azure")
        return 4 if timeout else 130
    if isinstance(error, ClientAuthenticationError) and unreachable(error):  # not a problem with the credentials
        report_unreachable(unreachable(error), settings.authority_host)
        say("Nothing was sent to Azure.")
        return 1
    if isinstance(error, HttpResponseError):
        report_error(error, settings, args)
        if args.mode in ("deploy", "recreate") and not isinstance(error, ClientAuthenticationError):
            explain([error_code(error)], settings, args)
        return 3 if isinstance(error, ClientAuthenticationError) or error.status_code == 403 else 1
    if isinstance(error, ServiceRequestError | ServiceResponseError):  # after azure-core's retries
        report_unreachable(error, settings.resource_manager_endpoint)
        return 1
    raise error


