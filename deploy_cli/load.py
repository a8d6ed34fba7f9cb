"""Loading settings: the env file and the environment, every problem at once, likely typos."""

import argparse
import codecs
import dataclasses
import io
import logging
import os
import re
import textwrap

from azure.mgmt.core.tools import parse_resource_id

from deploy import Settings
from deploy_cli.containers import (
    APP_ONLY,
    NUMBERED_INIT,
    SIDECAR,
    SUFFIXES,
    UNKNOWN_CONTAINER_SETTING,
    container_settings,
    group_checks,
)
from deploy_cli.progress import say
from deploy_cli.settings import (
    ENV,
    EXAMPLES,
    SCOPES,
    SECURE_ENV,
    SETTINGS,
    SettingsError,
    UsageError,
    clean,
    ours,
    parsed,
    secrets_in,
)
from deploy_cli.sign_in import WAYS, sign_in_settings
from deploy_cli.values import token_file_warnings


def load_settings(variables: dict[str, str], mode: str = "deploy") -> tuple[Settings, list[str]]:
    """Settings for mode (a key of SCOPES) and warnings, or SettingsError naming every problem at once.
    Reads nothing but the variables given (and whether the credential files named are readable)."""
    problems: list[str] = []
    warnings: list[str] = []
    values: dict = {}
    secrets = secrets_in(variables)
    missing = False
    for setting in (s for s in SETTINGS if s.scope in SCOPES[mode]):
        value = clean(variables.get(setting.name))
        if not value:
            if setting.required:
                problems.append(f"{setting.name} is not set; for example {setting.name}={setting.example}")
                missing = True
            continue
        found = parsed(setting.name, value, setting.check, secrets, problems, setting.hidden)
        if found is not None:
            values[setting.field] = found
    if mode not in ("delete", "restart"):  # they act on the group by its name
        groups = container_settings(variables, values.get("container_group_name", "app"), problems, secrets)
        missing = missing or "ACI_IMAGE is not set" in " ".join(problems)
        values.update(groups)
        warnings += group_checks(groups, problems)
    if mode != "dry-run":
        missing = sign_in_settings(variables, values, problems, warnings) or missing
    values.pop("token_credentials", None)
    subnet_subscription = parse_resource_id(values.get("subnet_id", "")).get("subscription", "")
    if values.get("subscription_id") and subnet_subscription.lower() not in ("", values["subscription_id"].lower()):
        problems.append(
            "ACI_SUBNET_ID is in another subscription than AZURE_SUBSCRIPTION_ID; the container group and "
            "its subnet must be in the same subscription"
        )
    if problems:
        raise SettingsError(problems, missing)
    if values.get("sign_in") == "federated_token":
        warnings += token_file_warnings(values["federated_token_file"])
    return Settings(**values), setting_warnings(variables) + warnings


def setting_warnings(variables: dict[str, str]) -> list[str]:
    """Likely typos: ACI_* names this script does not read, with the closest one it does."""
    known = [name for name in EXAMPLES if name.startswith("ACI_")]
    known += [f"ACI_{init}{kind}<NAME>" for init in ("", "INIT_") for kind in (ENV, SECURE_ENV)]
    warnings = []
    for key in sorted(variables):
        read = key in EXAMPLES or SIDECAR.fullmatch(key) or NUMBERED_INIT.fullmatch(key)
        if not key.startswith("ACI_") or read or re.match(rf"ACI_(INIT_)?(SECURE_)?{ENV}", key):
            continue
        prefix = UNKNOWN_CONTAINER_SETTING.match(key)
        group_level = prefix and f"ACI_{key[len(prefix[0]) :]}" in EXAMPLES and key[len(prefix[0]) :] not in SUFFIXES
        if group_level:  # ACI_SIDECAR_X_RESTART_POLICY: a setting of the group, not of one container
            warnings.append(
                f"{key} is not a setting deploy.py reads, so it is ignored: ACI_{key[len(prefix[0]) :]} is "
                "the group's, set once for every container"
            )
            continue
        candidates = [prefix[0] + suffix for suffix in SUFFIXES] if prefix else known
        import difflib  # only for a name it does not read: a run with none starts without it

        close = difflib.get_close_matches(key, candidates, 1)
        guess = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{key} is not a setting deploy.py reads, so it is ignored{guess}")
    return warnings


def read_env_file(path: str, named: bool) -> dict[str, str]:
    """The file's variables as written: values literal (no ${VAR} expansion); {} for a missing default .env."""
    try:
        with open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        if named:
            raise UsageError(f"--env-file {path}: no such file") from None
        return {}
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory, not an env file; name a file with --env-file PATH") from None
    except OSError as error:
        raise UsageError(f"the env file {path} cannot be read ({error.strerror}); check its permissions") from None
    return parse_env(path, decode_env(path, data))


def decode_env(path: str, data: bytes) -> str:
    """The env file's text, or a UsageError saying how it is saved or written other than as NAME=value lines."""
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))  # PowerShell 5's > and Out-File
    if not utf16 and b"\x00" in data:
        raise UsageError(
            f"the env file {path} looks like UTF-16 without a byte order mark; save it as UTF-8 "
            "(PowerShell: Set-Content -Encoding utf8)"
        )
    try:
        text = data.decode("utf-16" if utf16 else "utf-8-sig")  # utf-8-sig also drops Notepad's byte order mark
    except UnicodeDecodeError as error:
        raise UsageError(
            f"the env file {path} is not UTF-8 text (byte {error.start + 1} is {data[error.start]:#04x}); save it as "
            "UTF-8 (Notepad: Save As, Encoding UTF-8; PowerShell: Set-Content -Encoding utf8)"
        ) from None
    for kind, line_pattern in (("PowerShell", r"\s*\$env:\w+\s*="), ("YAML", r"\s*[A-Za-z_]\w*:(\s|$)")):
        found = [str(n) for n, line in enumerate(text.splitlines(), 1) if re.match(line_pattern, line, re.I)]
        if found:
            written = '$env:NAME="value"' if kind == "PowerShell" else "NAME: value"
            raise UsageError(
                f"the env file {path} has {kind} lines ({written}, line {', '.join(found)}); an env file has "
                "NAME=value lines"
            )
    return text


def parse_env(path: str, text: str) -> dict[str, str]:
    """The variables as written: values literal (no ${VAR} expansion); a line python-dotenv cannot read is named."""
    from dotenv import dotenv_values  # only when there is a file: settings from the environment alone skip it

    unread: list[str] = []  # python-dotenv logs what it cannot parse, without the file's name: say it with it
    dotenv_log = logging.getLogger("dotenv.main")

    def note(record: logging.LogRecord) -> bool:
        unread.append(record.getMessage())
        return False  # said below, with the file's name

    dotenv_log.addFilter(note)
    try:
        variables = dotenv_values(stream=io.StringIO(text), interpolate=False)
    finally:
        dotenv_log.removeFilter(note)
    for message in unread:
        line = re.search(r"line (\d+)", message)
        say(f"warning: {path}{f' line {line[1]}' if line else ''} cannot be read as NAME=value; it is ignored")
    return {name: value or "" for name, value in variables.items()}


# Variables the libraries read from the environment: a stale one in the shell hides the file's as much.
NETWORK = ("REQUESTS_CA_BUNDLE", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")


def read_variables(args: argparse.Namespace) -> tuple[dict[str, str], bool]:
    """The variables deploy.py sees, the real environment winning over the env file; and whether a file was read."""
    path = args.env_file or ".env"
    from_file = read_env_file(path, named=bool(args.env_file))
    for name in sorted(name for name in from_file if (ours(name) or name in NETWORK) and name in os.environ):
        if clean(os.environ[name]) != clean(from_file[name]):
            say(
                f"warning: {name} is set in the environment and in {path}, with different values; the environment's "
                f"value is used (unset {name} to use the file's)"
            )
    if args.verbose:
        say(f"settings from the environment: {', '.join(sorted(filter(ours, os.environ))) or 'none'}")
        say(f"settings from {path}: {', '.join(sorted(n for n in from_file if ours(n) and n not in os.environ))}")
    for name, value in from_file.items():  # what the file adds reaches the libraries too (REQUESTS_CA_BUNDLE)
        os.environ.setdefault(name, value)
    return dict(os.environ), bool(from_file) or os.path.isfile(path)


def settings_from(args: argparse.Namespace) -> Settings:
    variables, found = read_variables(args)
    try:
        settings, warnings = load_settings(variables, args.mode)
    except SettingsError as error:
        if error.missing and not found:
            where = f"no .env file was found in {os.getcwd()}: copy .env.example to .env there, or name one with "
            raise SettingsError([*error.problems, where + "--env-file PATH"], True) from None
        raise
    for warning in warnings:
        say(f"warning: {warning}")
    if args.mode != "dry-run":
        say(f"Signing in with {WAYS[settings.sign_in].what}")
    return dataclasses.replace(settings, answer_timeout=min(settings.answer_timeout, args.timeout))


def settings_help() -> str:
    """--help's list of every setting."""
    environment = [f"{ENV}<NAME>", f"{SECURE_ENV}<NAME>"]
    every = [s.name for s in SETTINGS] + [f"ACI_{kind}" for kind in environment]
    every += [f"ACI_INIT_{kind}" for kind in environment]
    variables = [f"{ENV}<VAR>", f"{SECURE_ENV}<VAR>"]
    every += [f"ACI_INIT_<N>_{suffix}" for suffix in [*SUFFIXES, *variables] if suffix not in APP_ONLY]
    every += [f"ACI_SIDECAR_<NAME>_{suffix}" for suffix in [*SUFFIXES, *variables]]
    listed = textwrap.fill(", ".join(every), 100, initial_indent="    ", subsequent_indent="    ")
    return "SETTINGS (docs/configuration.md):\n" + listed
