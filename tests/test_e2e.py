"""deploy.py end to end, as users run it: a subprocess with the real azure-identity and
azure-mgmt-containerinstance, over HTTPS to the local Entra ID + ARM emulator, behind a guard that
kills the process on any connection beyond loopback."""

import re
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import GUARD, ROOT, SECURE_VALUE, run_deploy, write_env
from tests.emulator import Emulator

GROUP = re.compile(r"/containerGroups/")
OPERATION = re.compile(r"/operations/")


@pytest.fixture
def emulator():
    with Emulator() as running:
        yield running


def settings_for(emulator, **changes):
    return {**emulator.settings(), "ACI_SECURE_ENV_DB_PASSWORD": SECURE_VALUE, **changes}


def deploy(emulator, tmp_path, *args, **changes):
    """Run deploy.py against the emulator and check that no secret reached either stream."""
    env_file = write_env(tmp_path / ".env", settings_for(emulator, **changes))
    result = run_deploy("--env-file", str(env_file), *args, network="loopback", env=env_for(emulator))
    assert_no_secrets(emulator, result.stdout + result.stderr)
    return result


def env_for(emulator):
    return {"REQUESTS_CA_BUNDLE": str(emulator.ca_path)}


def assert_no_secrets(emulator, output):
    for secret in [emulator.client_secret, SECURE_VALUE, *emulator.tokens]:
        assert secret not in output
    assert "Traceback" not in output


def calls(emulator):
    """The requests as (method, what) in order: what is openid, token, group or operation."""
    names = []
    for record in emulator.requests:
        if record.path.endswith("openid-configuration"):
            names.append((record.method, "openid"))
        elif record.path.endswith("/token"):
            names.append((record.method, "token"))
        else:
            names.append((record.method, "operation" if OPERATION.search(record.path) else "group"))
    return names


def test_deploy_sends_the_identity_pull_body_and_prints_the_private_ip(emulator, tmp_path):
    result = deploy(emulator, tmp_path)
    assert result.returncode == 0, result.stderr
    assert calls(emulator) == [("GET", "openid"), ("POST", "token"), ("PUT", "group"), ("GET", "operation"),
                               ("GET", "group")]  # fmt: skip
    put = next(record for record in emulator.requests if record.method == "PUT")
    identity_id = emulator.settings()["ACI_IDENTITY_ID"]
    assert put.status == 201 and put.query["api-version"] == ["2023-05-01"]
    assert put.body["identity"]["userAssignedIdentities"] == {identity_id: {}}
    assert put.body["properties"]["imageRegistryCredentials"] == [
        {"server": "acrprivatedemo.azurecr.io", "identity": identity_id}
    ]
    assert put.body["properties"]["subnetIds"] == [{"id": emulator.settings()["ACI_SUBNET_ID"]}]
    assert put.body["properties"]["ipAddress"]["type"] == "Private"
    env = put.body["properties"]["containers"][0]["properties"]["environmentVariables"]
    assert env == [{"name": "DB_PASSWORD", "secureValue": SECURE_VALUE}]  # on the wire, never on screen
    assert "private IP:         10.0.0.4 (80/TCP)" in result.stdout
    assert "provisioning state: Succeeded" in result.stdout
    assert "container aci-private-demo: Running, restarts 0" in result.stdout


def test_a_second_run_updates_the_existing_group_in_place(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    changed = deploy(emulator, tmp_path, ACI_IMAGE="acrprivatedemo.azurecr.io/aci-helloworld:v2", ACI_ENV_MODE="x")
    assert changed.returncode == 0, changed.stderr
    puts = [record for record in emulator.requests if record.method == "PUT"]
    assert [put.status for put in puts] == [201, 200]  # image and environment change in place
    assert puts[1].body["properties"]["containers"][0]["properties"]["image"].endswith(":v2")


def test_waiting_shows_states_and_events_as_they_happen_without_flooding_azure(emulator, tmp_path):
    emulator.delay = 6  # the group is read every 5 s: once while it is Creating
    started = time.monotonic()
    result = deploy(emulator, tmp_path, "-v", ACI_INIT_IMAGE="acrprivatedemo.azurecr.io/init:1")
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "  provisioning: Creating" in result.stderr
    assert (
        'aci-private-demo: Normal event Pulling: pulling image "acrprivatedemo.azurecr.io/aci-helloworld:latest"'
        in (result.stderr)
    )
    assert result.stderr.count("event Pulling") == 2  # each event once: the init and the app container
    assert "init container init: Terminated, exit code 0, restarts 0" in result.stdout
    waiting = [call for call in calls(emulator) if call[0] == "GET" and call[1] in ("group", "operation")]
    assert len(waiting) <= elapsed + 1  # at most one request a second while waiting
    assert "Request URL" in result.stderr  # -v shows the (redacted) HTTP log


def test_provisioning_failure_shows_the_pull_events_and_an_acrpull_hint(emulator, tmp_path):
    emulator.outcome, emulator.delay = "Failed", 0.5
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1
    assert "error: Failed: Container group 'aci-private-demo' failed" in result.stderr
    assert 'aci-private-demo: Failed: Failed to pull image "acrprivatedemo.azurecr.io/aci-helloworld:latest"' in (
        result.stderr
    )
    assert "AcrPull" in result.stderr and "--allow-trusted-services true" in result.stderr
    assert result.stdout == ""


def test_a_crashing_container_is_called_out_after_provisioning_succeeds(emulator, tmp_path):
    emulator.outcome = "Crashing"
    result = deploy(emulator, tmp_path)
    assert result.returncode == 0
    assert "container aci-private-demo: Waiting, restarts 3" in result.stdout
    assert "warning: provisioning succeeded, but container aci-private-demo is Waiting" in result.stderr
    assert "az container logs -g rg-aci-private -n aci-private-demo" in result.stderr


@pytest.mark.parametrize(
    "status, code, exit_code, hint",
    [
        (400, "InaccessibleImage", 1, "AcrPull"),
        (400, "InvalidImageRegistryIdentity", 1, "az identity show"),
        (409, "ServiceAssociationLinkNotReady", 1, "wait a minute and run again"),
        (400, "SubnetMissingRequiredDelegation", 1, "--delegations Microsoft.ContainerInstance/containerGroups"),
        (403, "AuthorizationFailed", 3, "az role assignment create"),
        (403, "LinkedAuthorizationFailed", 3, "subnets/join/action"),
    ],
)
def test_azure_rejecting_the_put_gives_the_code_and_a_hint(emulator, tmp_path, status, code, exit_code, hint):
    emulator.add_fault("PUT", status=status, code=code, message=f"{code} from the emulator.")
    result = deploy(emulator, tmp_path)
    assert result.returncode == exit_code
    assert f"error: {code}: {code} from the emulator." in result.stderr
    assert hint in result.stderr
    assert [call for call in calls(emulator) if call[1] == "group"] == [("PUT", "group")]  # 4xx is not retried


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"AZURE_CLIENT_SECRET": "wrong-secret-value"}, "AADSTS7000215"),
        ({"AZURE_CLIENT_ID": "11111111-0000-4000-8000-000000000000"}, "AADSTS700016"),
        ({"AZURE_TENANT_ID": "22222222-0000-4000-8000-000000000000"}, "AZURE_TENANT_ID does not exist"),
    ],
)
def test_sign_in_failures_exit_3_with_what_to_fix(emulator, tmp_path, change, expected):
    result = deploy(emulator, tmp_path, **change)
    assert result.returncode == 3
    assert expected in result.stderr and "hint:" in result.stderr
    assert "wrong-secret-value" not in result.stderr
    assert not any(call[1] == "group" for call in calls(emulator))


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 429, "code": "TooManyRequests", "headers": {"Retry-After": "1"}},
        {"status": 500, "code": "InternalServerError"},
        {"drop": True},
    ],
)
def test_throttling_server_errors_and_dropped_connections_are_retried(emulator, tmp_path, fault):
    emulator.add_fault("PUT", **fault)
    result = deploy(emulator, tmp_path)
    assert result.returncode == 0, result.stderr
    assert [record.status for record in emulator.requests if record.method == "PUT"] == [fault.get("status", 0), 201]


def test_timeout_exits_4_and_says_how_to_check_and_delete(emulator, tmp_path):
    emulator.delay = 60
    result = deploy(emulator, tmp_path, "--timeout", "1")
    assert result.returncode == 4
    assert "gave up waiting after 1 s" in result.stderr
    assert "The deployment goes on in Azure" in result.stderr
    assert "az container show -g rg-aci-private -n aci-private-demo" in result.stderr
    assert "python deploy.py --delete --env-file" in result.stderr


def test_ctrl_c_while_waiting_exits_130_with_the_same_guidance(emulator, tmp_path):
    emulator.delay = 60
    env_file = write_env(tmp_path / ".env", settings_for(emulator))
    env = {"PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": "loopback", "PATH": "/usr/bin:/bin", **env_for(emulator)}
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "deploy.py"), "--env-file", str(env_file)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not any(record.method == "PUT" for record in emulator.requests) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 130
    assert "interrupted" in stderr and "The deployment goes on in Azure" in stderr and "--delete" in stderr
    assert_no_secrets(emulator, stdout + stderr)


def test_delete_removes_an_existing_group_and_a_missing_one_is_fine(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    result = deploy(emulator, tmp_path, "--delete")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "container group aci-private-demo: deleted"
    assert emulator.groups == {}
    again = deploy(emulator, tmp_path, "--delete")
    assert again.returncode == 0
    assert again.stdout.strip() == "container group aci-private-demo: does not exist, nothing to delete"
    assert [call for call in calls(emulator) if call[1] == "group"][-1] == ("GET", "group")  # no DELETE sent


def test_dry_run_sends_no_request_at_all(emulator, tmp_path):
    env_file = write_env(tmp_path / ".env", settings_for(emulator))
    result = run_deploy("--dry-run", "--env-file", str(env_file), network="none", env=env_for(emulator))
    assert result.returncode == 0
    assert emulator.requests == []


def self_signed_certificate(path, password: bytes | None = None) -> bytes:
    """A service principal's certificate: private key and certificate in one PEM file; returns the certificate."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sp-aci-deployer")])
    now = datetime.now(timezone.utc)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    pem = certificate.public_bytes(serialization.Encoding.PEM)
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption) + pem)
    return pem


def test_certificate_credential_signs_in_and_deploys(emulator, tmp_path):
    emulator.certificate_pem = self_signed_certificate(tmp_path / "sp.pem", password=b"cert-pass-4321")
    changes = {"AZURE_CLIENT_SECRET": "", "AZURE_CLIENT_CERTIFICATE_PATH": str(tmp_path / "sp.pem"),
               "AZURE_CLIENT_CERTIFICATE_PASSWORD": "cert-pass-4321"}  # fmt: skip
    result = deploy(emulator, tmp_path, "-v", **changes)
    assert result.returncode == 0, result.stderr
    assert "cert-pass-4321" not in result.stdout + result.stderr
    token_request = next(record for record in emulator.requests if record.path.endswith("/token"))
    assert token_request.status == 200


def test_an_unregistered_certificate_is_refused_and_a_wrong_password_sends_nothing(emulator, tmp_path):
    emulator.certificate_pem = self_signed_certificate(tmp_path / "registered.pem")
    self_signed_certificate(tmp_path / "other.pem", password=b"right-password")
    other = {"AZURE_CLIENT_SECRET": "", "AZURE_CLIENT_CERTIFICATE_PATH": str(tmp_path / "other.pem")}
    unregistered = deploy(emulator, tmp_path, **other, AZURE_CLIENT_CERTIFICATE_PASSWORD="right-password")
    assert unregistered.returncode == 3 and "AADSTS700027" in unregistered.stderr
    assert "az ad app credential reset" in unregistered.stderr
    emulator.requests.clear()
    wrong_password = deploy(emulator, tmp_path, **other, AZURE_CLIENT_CERTIFICATE_PASSWORD="wrong-password")
    assert wrong_password.returncode == 2 and "AZURE_CLIENT_CERTIFICATE_PATH" in wrong_password.stderr
    assert "wrong-password" not in wrong_password.stderr and emulator.requests == []
