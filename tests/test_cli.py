"""deploy.py as users run it, where no Azure is needed: dry runs and usage or settings errors."""

import json
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
