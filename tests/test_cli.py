"""deploy.py as users run it, where no Azure is needed: dry runs and usage or settings errors."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CLIENT_SECRET, GUARD, ROOT, SECURE_VALUE, run_deploy, write_env


def test_dry_run_on_the_shipped_env_example_prints_the_body_and_touches_no_network():
    result = run_deploy("--dry-run", "--env-file", str(ROOT / ".env.example"), network="none")
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    identity_id = next(iter(body["identity"]["userAssignedIdentities"]))
    assert body["properties"]["imageRegistryCredentials"][0]["identity"] == identity_id
    assert body["properties"]["subnetIds"][0]["id"].endswith("/subnets/snet-aci")
    assert body["properties"]["ipAddress"]["type"] == "Private"
    assert "nothing was sent" in result.stderr


def test_the_network_guard_stops_a_call_home():
    code = "import socket; socket.getaddrinfo('login.microsoftonline.com', 443)"
    env = {"PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": "loopback"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert result.returncode == 97 and "NETWORK GUARD" in result.stderr


def test_dry_run_masks_secure_values_and_never_shows_the_secret(settings, tmp_path):
    env_file = write_env(tmp_path / ".env", settings)
    for extra in ([], ["-v"]):
        result = run_deploy("--dry-run", "--env-file", str(env_file), *extra)
        assert result.returncode == 0, result.stderr
        variables = json.loads(result.stdout)["properties"]["containers"][0]["properties"]["environmentVariables"]
        assert variables == [{"name": "DB_PASSWORD", "secureValue": "<secure value not shown>"}]
        for secret in (CLIENT_SECRET, SECURE_VALUE):
            assert secret not in result.stdout + result.stderr


def test_real_environment_wins_over_the_env_file(settings, tmp_path):
    env_file = write_env(tmp_path / ".env", settings)
    result = run_deploy("--dry-run", "--env-file", str(env_file), env={"ACI_CPU": "3"})
    assert json.loads(result.stdout)["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpu"] == 3


@pytest.mark.parametrize(
    "change, variable",
    [
        ({"ACI_SUBNET_ID": "snet-aci"}, "ACI_SUBNET_ID"),
        ({"ACI_IMAGE": "nginx"}, "ACI_IMAGE"),
        ({"ACI_PORTS": "70000"}, "ACI_PORTS"),
        ({"AZURE_CLIENT_SECRET": ""}, "AZURE_CLIENT_SECRET"),
        ({"AZURE_AUTHORITY_HOST": "http://127.0.0.1:1"}, "AZURE_AUTHORITY_HOST"),
        ({"ACI_PORTS": "80,81,82,83,84,85"}, "ACI_PORTS"),
    ],
)
def test_bad_settings_exit_2_naming_the_variable_without_a_traceback_or_any_request(
    settings, tmp_path, change, variable
):
    env_file = write_env(tmp_path / ".env", {**settings, **change})
    result = run_deploy("--env-file", str(env_file), network="none")
    assert result.returncode == 2
    assert variable in result.stderr and "nothing was sent to Azure" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_unknown_aci_setting_is_a_warning_and_the_run_goes_on(settings, tmp_path):
    env_file = write_env(tmp_path / ".env", {**settings, "ACI_MEMORY": "2"})
    result = run_deploy("--dry-run", "--env-file", str(env_file))
    assert result.returncode == 0
    assert "warning: ACI_MEMORY is not a setting deploy.py reads, so it is ignored; did you mean ACI_MEMORY_GB?" in (
        result.stderr
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["--env-file", "no-such.env"], "no-such.env: no such file"),
        (["--timeout", "0"], "--timeout must be a positive number"),
        (["--timeout", "soon"], "invalid float value"),
        (["--dry-run", "--delete"], "not allowed with argument"),
    ],
)
def test_usage_errors_exit_2(args, message):
    result = run_deploy(*args)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_a_missing_default_env_file_is_fine_and_settings_come_from_the_environment(settings, tmp_path):
    result = run_deploy("--dry-run", env=settings, cwd=tmp_path)
    assert result.returncode == 0 and json.loads(result.stdout)["location"] == "westeurope"


def dry_run_body(result) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "encoding, newline",
    [("utf-8-sig", "\r\n"), ("utf-8-sig", "\n"), ("utf-16", "\r\n"), ("utf-8", "\r\n")],
    ids=["notepad-bom-crlf", "bom", "powershell5-utf16", "crlf"],
)
def test_env_files_as_editors_save_them_are_read_whole(settings, tmp_path, encoding, newline):
    lines = [f"AZURE_SUBSCRIPTION_ID={settings['AZURE_SUBSCRIPTION_ID']}"]  # the first line, after any BOM
    lines += [f"export {key}={value}" for key, value in settings.items() if key != "AZURE_SUBSCRIPTION_ID"]
    env_file = tmp_path / ".env"
    env_file.write_bytes(newline.join(lines + [""]).encode(encoding))
    body = dry_run_body(run_deploy("--dry-run", "--env-file", str(env_file)))
    assert body["properties"]["subnetIds"][0]["id"] == settings["ACI_SUBNET_ID"]  # no stray \r


def unreadable_env_files(tmp_path):
    (tmp_path / "folder.env").mkdir()
    (tmp_path / "latin1.env").write_bytes("ACI_ENV_CITY=Malm\xf6\n".encode("latin-1"))
    (tmp_path / "loop.env").symlink_to(tmp_path / "loop.env")
    return {"folder.env": "is a directory", "latin1.env": "is not UTF-8 text", "loop.env": "cannot be read"}


def test_an_env_file_that_cannot_be_read_or_decoded_is_a_usage_error_naming_it(settings, tmp_path):
    for name, message in unreadable_env_files(tmp_path).items():
        result = run_deploy("--dry-run", "--env-file", str(tmp_path / name), env=settings)
        assert result.returncode == 2, result.stderr
        assert f"{tmp_path / name}" in result.stderr and message in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    latin1 = run_deploy("--dry-run", "--env-file", str(tmp_path / "latin1.env"), env=settings)
    assert "save it as UTF-8" in latin1.stderr


def test_an_env_file_without_read_permission_is_a_usage_error(settings, tmp_path):
    env_file = write_env(tmp_path / ".env", settings)
    env_file.chmod(0)
    # root reads any file: take that power away from the process, as an ordinary user never has it
    launcher = ("setpriv", "--bounding-set", "-dac_override,-dac_read_search") if os.geteuid() == 0 else ()
    result = run_deploy("--dry-run", "--env-file", str(env_file), launcher=launcher)
    assert result.returncode == 2, result.stderr
    assert f"the env file {env_file} cannot be read (Permission denied)" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_settings_without_a_dot_env_say_where_it_was_looked_for(tmp_path):
    result = run_deploy(cwd=tmp_path)
    assert result.returncode == 2
    assert (
        f"no .env file was found in {tmp_path}: copy .env.example to .env there, or name one with --env-file PATH"
        in (result.stderr)
    )


def test_a_variable_set_in_the_shell_and_the_env_file_is_named_and_the_shell_wins(settings, tmp_path):
    env_file = write_env(tmp_path / ".env", {**settings, "ACI_CPU": "2"})
    stale = {"AZURE_CLIENT_SECRET": "stale-exported-secret", "ACI_CPU": "3", "ACI_MEMORY_GB": "1.5"}
    result = run_deploy("--dry-run", "-v", "--env-file", str(env_file), env=stale)
    body = dry_run_body(result)
    assert body["properties"]["containers"][0]["properties"]["resources"]["requests"]["cpu"] == 3
    for name in ("AZURE_CLIENT_SECRET", "ACI_CPU"):
        assert f"warning: {name} is set in the environment and in {env_file}, with different values; the " in (
            result.stderr
        )
    assert "ACI_MEMORY_GB is set" not in result.stderr  # the same value in both is no conflict
    assert "stale-exported-secret" not in result.stderr and CLIENT_SECRET not in result.stderr
    assert "settings from the environment: ACI_CPU, ACI_MEMORY_GB, AZURE_CLIENT_SECRET" in result.stderr
    assert f"settings from {env_file}: ACI_CONTAINER_GROUP_NAME, ACI_IDENTITY_ID, ACI_IMAGE," in result.stderr


def test_values_are_taken_literally_and_quoting_works_as_env_example_says(settings, tmp_path):
    env_file = tmp_path / ".env"
    write_env(env_file, settings)
    with env_file.open("a") as file:
        file.write('ACI_ENV_TEMPLATE=pre${ACI_CPU}post\nACI_ENV_CUT=hello # a comment\nACI_ENV_KEPT="hello # world"\n')
        file.write("ACI_ENV_RAW='a\\b$c'\n")
    variables = dry_run_body(run_deploy("--dry-run", "--env-file", str(env_file)))["properties"]["containers"][0]
    values = {v["name"]: v.get("value") for v in variables["properties"]["environmentVariables"]}
    assert values["TEMPLATE"] == "pre${ACI_CPU}post"
    assert (values["CUT"], values["KEPT"], values["RAW"]) == ("hello", "hello # world", "a\\b$c")


def test_a_secret_pasted_into_an_id_setting_is_never_printed(settings, tmp_path):
    env_file = write_env(tmp_path / ".env", {**settings, "AZURE_CLIENT_ID": CLIENT_SECRET})
    result = run_deploy("--env-file", str(env_file))
    assert result.returncode == 2 and "AZURE_CLIENT_ID (value not shown" in result.stderr
    assert CLIENT_SECRET not in result.stderr + result.stdout


def test_help_shows_every_setting_the_exit_codes_and_where_the_prerequisites_are():
    from deploy_cli.settings import SETTINGS

    result = run_deploy("--help")
    assert result.returncode == 0
    for setting in SETTINGS:
        assert setting.name in result.stdout
    assert "ACI_ENV_<NAME>" in result.stdout and "ACI_SECURE_ENV_<NAME>" in result.stdout
    assert "EXIT CODES" in result.stdout and "130 interrupted" in result.stdout
    assert "README.md explains the prerequisites" in result.stdout
    assert "--recreate" in result.stdout


def test_docs_readers_are_told_the_terms_they_copy_under():
    assert (ROOT / "deploy.py").read_text().startswith("# SPDX-License-Identifier: MIT\n")
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "WITHOUT WARRANTY OF ANY KIND" in licence


def test_utf16_without_a_byte_order_mark_and_powershell_lines_are_named_not_a_traceback(settings, tmp_path):
    text = "".join(f"{key}={value}\n" for key, value in settings.items())
    (tmp_path / "nobom.env").write_bytes(text.encode("utf-16-le"))
    (tmp_path / "ps.env").write_text(text + '$env:ACI_CPU="2"\n$Env:ACI_PORTS = "80"\n')
    for name, expected in (("nobom.env", "looks like UTF-16 without a byte order mark; save it as UTF-8"),
                           ("ps.env", "has PowerShell lines ($env:NAME=\"value\", line 12, 13)")):  # fmt: skip
        result = run_deploy("--dry-run", "--env-file", str(tmp_path / name))
        assert result.returncode == 2, result.stderr
        assert f"the env file {tmp_path / name} " in result.stderr and expected in result.stderr
        assert "Traceback" not in result.stderr


def test_a_ca_bundle_or_proxy_set_differently_in_the_shell_and_the_env_file_is_named(settings, tmp_path):
    env_file = write_env(tmp_path / ".env", {**settings, "REQUESTS_CA_BUNDLE": "/etc/file-ca.pem",
                                              "HTTPS_PROXY": "http://proxy.file:3128"})  # fmt: skip
    shell = {"REQUESTS_CA_BUNDLE": "/etc/shell-ca.pem", "HTTPS_PROXY": "http://proxy.file:3128"}
    result = run_deploy("--dry-run", "--env-file", str(env_file), env=shell)
    assert result.returncode == 0, result.stderr
    assert f"warning: REQUESTS_CA_BUNDLE is set in the environment and in {env_file}, with different values" in (
        result.stderr
    )
    assert "HTTPS_PROXY is set" not in result.stderr and "/etc/shell-ca.pem" not in result.stderr  # names only


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_timeout_and_settle_must_be_finite(value):
    for flag in ("--timeout", "--settle"):
        result = run_deploy(flag, value)
        assert result.returncode == 2 and f"{flag} must be" in result.stderr, result.stderr
