"""deploy.py end to end, as users run it: a subprocess with the real azure-identity and
azure-mgmt-containerinstance, over HTTPS to the local Entra ID + ARM emulator, behind a guard that
kills the process on any connection beyond loopback."""

import dataclasses
import json
import re
import shlex
import signal
import subprocess
import sys
import time

import pytest
from azure.core.exceptions import HttpResponseError

import deploy as script
from deploy_cli.hints import report_error
from deploy_cli.load import load_settings
from tests.conftest import GUARD, ROOT, SECURE_VALUE, run_deploy, write_env

GROUP = re.compile(r"/containerGroups/")
OPERATION = re.compile(r"/operations/")


def settings_for(emulator, **changes):
    """The emulator's settings with a secure value, changed as given; a setting given as None is left out."""
    settings = {**emulator.settings(), "ACI_SECURE_ENV_DB_PASSWORD": SECURE_VALUE, **changes}
    return {name: value for name, value in settings.items() if value is not None}


def deploy(emulator, tmp_path, *args, **changes):
    """Run deploy.py against the emulator and check that no secret reached either stream."""
    env_file = write_env(tmp_path / ".env", settings_for(emulator, **changes))
    watches = not {"--settle", "--check", "--plan", "--delete", "--dry-run"} & set(args)  # --settle is a usage error
    args = (*args, "--settle", "0") if watches else args  # the settle watch has tests of its own
    result = run_deploy("--env-file", str(env_file), *args, network="loopback", env=env_for(emulator))
    assert_no_secrets(emulator, result.stdout + result.stderr)
    return result


def typed(tmp_path, *flags):
    """deploy.py's command line as these tests type it: what hints must name, so that pasting one works."""
    return shlex.join([sys.executable, str(ROOT / "deploy.py"), "--env-file", str(tmp_path / ".env"), *flags])


def env_for(emulator):
    return {"REQUESTS_CA_BUNDLE": str(emulator.ca_path)}


def assert_no_secrets(emulator, output):
    for secret in [emulator.client_secret, SECURE_VALUE, *emulator.tokens]:
        assert secret not in output
    assert "Traceback" not in output


# What a request path reads, for calls(): the first pattern found in it names it.
WHAT = [("openid-configuration", "openid"), ("/token", "token"), ("/operations/", "operation"),
        ("/roleAssignments", "roles"),
        ("/roleDefinitions/", "role definition"), ("/subnets/", "subnet"), ("/virtualNetworks/", "network"),
        ("/userAssignedIdentities/", "identity"), ("/registries", "registries"), ("/containerGroups/", "group"),
        ("/providers/Microsoft.ContainerInstance", "provider")]  # fmt: skip


def calls(emulator):
    """The requests as (method, what) in order: what is openid, token, group, operation, or a read --check makes."""
    return [(r.method, next(what for part, what in WHAT if part.lower() in r.path.lower())) for r in emulator.requests]


def test_deploy_sends_the_identity_pull_body_and_prints_the_private_ip(emulator, tmp_path):
    result = deploy(emulator, tmp_path)
    assert result.returncode == 0, result.stderr
    # The read before the PUT (404: create) is the one request the comparison with the live group costs.
    assert calls(emulator) == [("GET", "openid"), ("POST", "token"), ("GET", "group"), ("PUT", "group"),
                               ("GET", "operation"), ("GET", "group")]  # fmt: skip
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
    changed = deploy(emulator, tmp_path, ACI_IMAGE=IMAGE_V2, ACI_ENV_MODE="x")
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


def test_a_crash_looping_container_exits_1_with_the_end_of_its_log(emulator, tmp_path):
    emulator.outcome = "Crashing"
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1
    assert "container aci-private-demo: Waiting, restarts 3" in result.stdout
    assert "error: provisioning succeeded, but container aci-private-demo is Waiting (CrashLoopBackOff" in result.stderr
    logged = [line for line in result.stderr.splitlines() if line.startswith("  | ")]
    assert len(logged) == 20
    assert logged[-1] == "  | aci-private-demo: fatal: could not connect to the database after 29 attempts"
    assert "demo 10:" not in result.stderr and "demo 11:" in result.stderr  # the last 20 lines only
    assert "az container logs -g rg-aci-private -n aci-private-demo --container-name aci-private-demo" in result.stderr
    logs = [record for record in emulator.requests if record.path.endswith("/logs")]
    assert len(logs) == 1 and logs[0].query["tail"] == ["20"]


@pytest.mark.parametrize("outcome, policy, exit_code", [("Exited", "Never", 1), ("Completed", "Never", 0),
                                                         ("Completed", "OnFailure", 0)])  # fmt: skip
def test_a_run_once_container_succeeds_when_it_exits_0_and_fails_otherwise(emulator, tmp_path, outcome, policy,
                                                                            exit_code):  # fmt: skip
    emulator.outcome = outcome
    result = deploy(emulator, tmp_path, ACI_RESTART_POLICY=policy)
    assert result.returncode == exit_code, result.stderr
    assert f"exit code {exit_code}" in result.stdout
    assert ("The end of its log" in result.stderr) == (exit_code == 1)


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
    assert [call for call in calls(emulator) if call[1] == "group"] == [("GET", "group"), ("PUT", "group")]


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"AZURE_CLIENT_SECRET": "wrong-secret-value"}, "the secret's ID is not it"),
        ({"EXPIRED": "yes"}, "AADSTS7000222"),
        ({"AZURE_CLIENT_ID": "11111111-0000-4000-8000-000000000000"}, "AADSTS700016"),
        ({"AZURE_TENANT_ID": "22222222-0000-4000-8000-000000000000"}, "AZURE_TENANT_ID does not exist"),
    ],
)
def test_sign_in_failures_exit_3_with_what_to_fix(emulator, tmp_path, change, expected):
    emulator.secret_expired = bool(change.pop("EXPIRED", ""))
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
    assert f"{typed(tmp_path, '--delete')}   (or: az container delete" in result.stderr


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
    try:
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
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


def test_entra_id_unreachable_is_a_network_error_naming_the_host_not_bad_credentials(emulator, tmp_path):
    result = deploy(emulator, tmp_path, AZURE_AUTHORITY_HOST="https://127.0.0.1:9")  # nothing listens there
    assert result.returncode == 1
    assert "error: could not reach 127.0.0.1:9 (" in result.stderr and "Connection refused" in result.stderr
    assert "hint: check the network, DNS, any proxy" in result.stderr
    assert "AZURE_CLIENT_SECRET is wrong" not in result.stderr


def test_a_ca_bundle_without_the_proxys_ca_is_named_in_the_hint(emulator, tmp_path):
    import certifi

    env_file = write_env(tmp_path / ".env", settings_for(emulator))
    result = run_deploy("--env-file", str(env_file), network="loopback", env={"REQUESTS_CA_BUNDLE": certifi.where()})
    assert result.returncode == 1
    assert f"(it names {certifi.where()}, which does not hold that CA)" in result.stderr


def test_an_untrusted_tls_certificate_points_at_requests_ca_bundle(emulator, tmp_path):
    env_file = write_env(tmp_path / ".env", settings_for(emulator))
    result = run_deploy("--env-file", str(env_file), network="loopback")  # the emulator's CA is not trusted
    host = emulator.url.removeprefix("https://")
    assert result.returncode == 1, result.stderr
    assert f"error: could not reach {host} (" in result.stderr and "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert "REQUESTS_CA_BUNDLE" in result.stderr.split("hint:", 1)[1]
    assert emulator.requests == []  # the TLS handshake failed before any request


def test_a_ca_bundle_named_in_the_env_file_is_trusted(emulator, tmp_path):
    env_file = write_env(tmp_path / ".env", settings_for(emulator, REQUESTS_CA_BUNDLE=str(emulator.ca_path)))
    result = run_deploy("--env-file", str(env_file), "--settle", "0", network="loopback")  # not in the real environment
    assert result.returncode == 0, result.stderr


def test_a_refused_update_names_each_changed_setting_and_the_two_ways_on(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    emulator.requests.clear()
    result = deploy(emulator, tmp_path, ACI_CPU="2", ACI_RESTART_POLICY="OnFailure", ACI_IMAGE=IMAGE_V2)
    assert result.returncode == 1
    # Found by comparing with the live group, before anything is sent (Azure would answer InvalidContainerGroupUpdate).
    assert "error: Azure cannot change these settings of aci-private-demo in place:" in result.stderr
    assert "  ACI_CPU: 1 -> 2\n" in result.stderr and "  ACI_RESTART_POLICY: Always -> OnFailure\n" in result.stderr
    assert "ACI_MEMORY_GB" not in result.stderr and "ACI_IMAGE" not in result.stderr  # unchanged, or changeable
    assert f"{typed(tmp_path, '--recreate')}, or python deploy.py" not in result.stderr  # the command as typed
    assert typed(tmp_path, "--recreate") in result.stderr and typed(tmp_path, "--delete") in result.stderr
    assert calls(emulator)[2:] == [("GET", "group")]  # the live group, and no PUT
    assert len(emulator.groups) == 1  # nothing deleted without --recreate


IMAGE_V2 = "acrprivatedemo.azurecr.io/aci-helloworld:v2"


def test_recreate_deletes_waits_and_creates_the_group_anew(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    emulator.requests.clear()
    result = deploy(emulator, tmp_path, "--recreate", ACI_CPU="2")
    assert result.returncode == 0, result.stderr
    assert "Deleting container group aci-private-demo ..." in result.stderr
    group_calls = [call for call in calls(emulator) if call[1] == "group"][:4]
    assert group_calls == [("GET", "group"), ("DELETE", "group"), ("GET", "group"), ("PUT", "group")]
    put = next(record for record in emulator.requests if record.method == "PUT")
    assert put.status == 201  # created anew, not updated
    assert "provisioning state: Succeeded" in result.stdout


def test_recreate_gives_up_waiting_with_the_same_guidance_as_a_deploy(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    emulator.delay = 60
    result = deploy(emulator, tmp_path, "--recreate", "--timeout", "1")
    assert result.returncode == 4
    assert "gave up waiting after 1 s" in result.stderr and "The deployment goes on in Azure" in result.stderr
    assert "note: --recreate deleted the old container group aci-private-demo: it is gone" in result.stderr


def test_recreate_of_a_missing_group_just_creates_it(emulator, tmp_path):
    result = deploy(emulator, tmp_path, "--recreate")
    assert result.returncode == 0, result.stderr
    assert "Deleting" not in result.stderr and not any(r.method == "DELETE" for r in emulator.requests)


def test_recreate_says_plainly_when_the_old_group_is_gone_and_the_new_one_failed(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    emulator.add_fault("PUT", status=400, code="InaccessibleImage", message="The image is not accessible.")
    result = deploy(emulator, tmp_path, "--recreate")
    assert result.returncode == 1
    assert "error: InaccessibleImage" in result.stderr
    assert "note: --recreate deleted the old container group aci-private-demo: it is gone" in result.stderr


@pytest.mark.parametrize(
    "code, hint",
    [
        ("RegistryErrorResponse", "az acr import"),
        ("MoreImageRegistryCredentialsThanContainers", "import the images into one registry"),
        ("PrincipalNotFound", "wait a minute or two and run again"),
        ("AmbiguousImageResitryCredentialType", "an identity and no username or password"),
    ],
)
def test_each_refusal_gets_the_hint_for_its_exact_code(emulator, tmp_path, code, hint):
    emulator.add_fault("PUT", status=400, code=code, message="InaccessibleImage is not the cause here.")
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1
    assert f"error: {code}: " in result.stderr
    assert hint in result.stderr and "AcrPull" not in result.stderr  # the code decides, not words in the message


def test_a_capacity_failure_after_the_put_shows_the_event_and_the_capacity_hint(emulator, tmp_path):
    emulator.outcome, emulator.delay = "NoCapacity", 0.5
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1
    assert "error: Failed: Container group 'aci-private-demo' failed" in result.stderr
    assert "group: InsufficientCapacity.: The requested resource is not available in the location" in result.stderr
    assert "hint: the region has no capacity for this group now" in result.stderr


def test_pull_failure_events_are_shown_in_time_order_though_azure_shuffles_them(emulator, tmp_path):
    emulator.outcome, emulator.delay = "Failed", 0.5
    result = deploy(emulator, tmp_path)
    events = [line.split(": ")[1] for line in result.stderr.splitlines() if line.startswith("  aci-private-demo: ")]
    assert events == ["Failed", "BackOff"]


def test_progress_shows_each_event_once_in_time_order(emulator, tmp_path):
    emulator.delay = 4.5  # polls at 0, 2, 4, 6 s; the progress read at 5 s sees Succeeded before the poller does
    result = deploy(emulator, tmp_path)
    assert result.returncode == 0, result.stderr
    events = [line.split(" event ")[1].split(":")[0] for line in result.stderr.splitlines() if " event " in line]
    assert events == ["Pulling", "Pulled", "Started"]


def test_the_shapes_of_real_traffic_are_handled(emulator, tmp_path):
    emulator.put_succeeded = True  # 201 already Succeeded
    result = deploy(emulator, tmp_path)
    assert result.returncode == 0, result.stderr
    put = next(record for record in emulator.requests if record.method == "PUT")
    assert put.status == 201 and "provisioning state: Succeeded" in result.stdout
    operation = next(record for record in emulator.requests if OPERATION.search(record.path))
    assert {"t", "c", "s", "h"} <= operation.query.keys()  # followed with its signature parameters
    deleted = deploy(emulator, tmp_path, "--delete")
    assert deleted.returncode == 0 and [r.status for r in emulator.requests if r.method == "DELETE"] == [200]


def test_the_emulator_refuses_more_than_five_ports_like_azure(emulator, monkeypatch):
    """deploy.py stops this before sending; the sample half alone sends it, and Azure's answer comes back."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    settings, _ = load_settings({**emulator.settings(), "ACI_PORTS": "80"})
    main = dataclasses.replace(settings.containers[0], ports=(80, 81, 82, 83, 84, 85))
    six_ports = dataclasses.replace(settings, containers=(main,))
    with pytest.raises(HttpResponseError) as refused:
        script.create_or_update(
            script.create_client(six_ports, script.create_credential(six_ports)), six_ports, timeout=10
        )
    assert refused.value.status_code == 400 and refused.value.error.code == "InvalidIpAddressPortCount"


def test_a_new_principal_may_be_replication_lag(emulator, tmp_path):
    result = deploy(emulator, tmp_path, AZURE_CLIENT_ID="11111111-0000-4000-8000-000000000000")
    assert result.returncode == 3 and "AADSTS700016" in result.stderr
    assert "created in the last few minutes" in result.stderr


# Round 3: what exit 0 promises, and what is said when nothing was sent -------------------------------
def test_a_container_that_crashes_seconds_after_it_starts_fails_within_the_settle_window(emulator, tmp_path):
    emulator.outcome, emulator.delay = "Unstable", 0.5  # Running at Succeeded, crash-looping 3 s later
    result = deploy(emulator, tmp_path, "--settle", "8")
    assert result.returncode == 1, result.stderr
    assert "container aci-private-demo: Waiting" in result.stdout
    assert "The end of its log:" in result.stderr and "  | aci-private-demo: fatal:" in result.stderr
    assert "still exists in Azure" in result.stderr and typed(tmp_path, "--delete") in result.stderr
    quick = deploy(emulator, tmp_path, "--settle", "0")  # the state at Succeeded, as before
    assert quick.returncode == 0 and "container aci-private-demo: Running" in quick.stdout


def test_a_settled_group_is_read_only_while_the_window_lasts(emulator, tmp_path):
    emulator.delay = 0.5
    result = deploy(emulator, tmp_path, "--settle", "3")
    assert result.returncode == 0, result.stderr
    assert [call for call in calls(emulator) if call == ("GET", "group")] == [("GET", "group")] * 3  # read, final + 1


@pytest.mark.parametrize("outcome, exit_code, group_state", [("Completed", 0, "Succeeded"), ("Exited", 1, "Failed")])
def test_a_finished_run_once_group_reports_azures_group_state_and_the_exit_code_follows_the_containers(
    emulator, tmp_path, outcome, exit_code, group_state
):
    emulator.outcome = outcome
    result = deploy(emulator, tmp_path, "--settle", "30", ACI_RESTART_POLICY="Never")
    assert result.returncode == exit_code, result.stderr
    assert f"group state:        {group_state}" in result.stdout  # and no 30 s wait: the group is done


def test_an_app_that_exits_0_under_always_says_why_that_is_an_error(emulator, tmp_path):
    emulator.outcome = "Completed"
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1
    assert "ACI_RESTART_POLICY=Always restarts it: a run-once job wants Never or OnFailure" in result.stderr


def test_a_failed_provisioning_says_the_group_still_exists_and_how_to_recreate_or_delete_it(emulator, tmp_path):
    emulator.outcome, emulator.delay = "Failed", 0.5
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1
    assert "still exists in Azure and keeps trying" in result.stderr
    assert typed(tmp_path, "--recreate") in result.stderr and typed(tmp_path, "--delete") in result.stderr


def test_a_platform_failed_event_does_not_get_the_pull_hint(emulator, tmp_path, monkeypatch):
    from types import SimpleNamespace

    settings, _ = load_settings(emulator.settings())
    args = script.parse_args(["--env-file", str(tmp_path / ".env")])
    platform = 'Failed to pull image "x": CriContainerActivator is getting initialized and not ready for use.'
    events = [("aci-private-demo", SimpleNamespace(name="Failed", message=platform))]
    error = HttpResponseError(message="Container group 'aci-private-demo' failed.")
    assert "AcrPull" not in capsys_text(monkeypatch, lambda: report_error(error, settings, args, events=events))


def capsys_text(monkeypatch, action) -> str:
    import io

    buffer = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buffer)
    action()
    return buffer.getvalue()


def silent_server():
    """A host that accepts connections and never answers, as a broken proxy or authority does."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


def test_a_sign_in_that_gets_no_answer_is_bounded_by_timeout_and_says_nothing_was_sent(emulator, tmp_path):
    with silent_server() as listener:
        host = f"127.0.0.1:{listener.getsockname()[1]}"
        started = time.monotonic()
        result = deploy(emulator, tmp_path, "--timeout", "3", AZURE_AUTHORITY_HOST=f"https://{host}")
    elapsed = time.monotonic() - started
    assert result.returncode == 1, result.stderr
    assert elapsed < 3 + 1, f"exited after {elapsed:.1f} s"  # sign-in and the first request in all, not each try
    assert f"error: no answer from {host} within --timeout 3 s; nothing was sent to Azure" in result.stderr
    assert emulator.requests == []


def test_ctrl_c_before_the_put_says_nothing_was_sent(emulator, tmp_path):
    with silent_server() as listener:
        changes = {"AZURE_AUTHORITY_HOST": f"https://127.0.0.1:{listener.getsockname()[1]}"}
        env_file = write_env(tmp_path / ".env", settings_for(emulator, **changes))
        env = {
            "PYTHONPATH": str(GUARD),
            "DEPLOY_TEST_NETWORK": "loopback",
            "PATH": "/usr/bin:/bin",
            **env_for(emulator),
        }
        process = subprocess.Popen([sys.executable, str(ROOT / "deploy.py"), "--env-file", str(env_file)], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            time.sleep(2)  # signing in, waiting on the silent host
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=20)
        finally:
            process.kill()
    assert process.returncode == 130
    assert "interrupted." in stderr and "The deployment was not started: nothing was sent to Azure." in stderr
    assert "goes on in Azure" not in stderr and "Traceback" not in stderr


def test_ctrl_c_while_the_libraries_load_is_interrupted_not_a_traceback():
    env = {"PYTHONPATH": str(GUARD), "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([sys.executable, str(ROOT / "deploy.py"), "--dry-run"], env=env, cwd=GUARD,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert "Traceback" not in stderr
    assert process.returncode in (130, 2), stderr  # interrupted, or it had already reached the settings check


def test_the_emulator_refuses_an_old_api_version_only_for_identity_credentials(emulator):
    from tests.emulator.aci import route_group

    path = f"/subscriptions/{emulator.subscription_id}/resourceGroups/rg-aci-private/providers/" \
           "Microsoft.ContainerInstance/containerGroups/old"  # fmt: skip
    body = {"location": "westeurope", "properties": {"imageRegistryCredentials": [{"server": "a", "identity": "x"}]}}
    status, answer, _ = route_group(emulator, "PUT", path, {"api-version": ["2021-03-01"]}, json.dumps(body).encode())
    assert status == 400 and answer["error"]["code"] == "InvalidImageRegistryCredentialType"
    status, _, _ = route_group(emulator, "GET", path, {"api-version": ["2019-12-01"]}, b"")
    assert status == 404  # a read at an old version is not refused: the group just does not exist


@pytest.mark.parametrize(
    "status, code, message, exit_code, hint, not_said",
    [
        (400, "ContainerGroupQuotaReached", "container group quota 'StandardCores' exceeded in region 'westeurope'",
         1, "ask for more with a quota request", "another region"),
        (409, "ServiceUnavailable", "container group quota 'ContainerGroups' exceeded in region 'westeurope'",
         1, "deploy one at a time, in one region", "another region"),
        (401, "InvalidAuthenticationTokenTenant", "The access token is from the wrong issuer.", 3,
         "set AZURE_TENANT_ID to the subscription's tenant", "RESOURCE_MANAGER"),
        (401, "InvalidAuthenticationTokenAudience", "The access token has been obtained for wrong audience.", 3,
         "AZURE_RESOURCE_MANAGER_ENDPOINT must be the ARM endpoint", "AZURE_TENANT_ID"),
        (403, "AuthorizationFailed", "If access was recently granted, please refresh your credentials.", 3,
         "role assignments take up to 30 minutes to apply", "10-30"),
    ],
)  # fmt: skip
def test_round_3_codes_get_their_own_hint(emulator, tmp_path, status, code, message, exit_code, hint, not_said):
    emulator.add_fault("PUT", status=status, code=code, message=message)
    result = deploy(emulator, tmp_path)
    assert result.returncode == exit_code, result.stderr
    hint_line = result.stderr.split("hint: ", 1)[1]
    assert hint in hint_line and not_said not in hint_line


def test_hints_fill_in_what_deploy_py_knows(emulator, tmp_path):
    emulator.add_fault("PUT", status=400, code="InaccessibleImage", message="The image is not accessible.")
    result = deploy(emulator, tmp_path)
    assert "az acr update --name acrprivatedemo --allow-trusted-services true" in result.stderr
    assert "<registry>" not in result.stderr


def test_recreate_prints_the_error_before_the_note_on_what_it_deleted(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    emulator.add_fault("PUT", status=400, code="InaccessibleImage", message="The image is not accessible.")
    result = deploy(emulator, tmp_path, "--recreate")
    assert result.returncode == 1
    assert result.stderr.index("error: InaccessibleImage") < result.stderr.index("note: --recreate deleted")


def test_ctrl_c_works_when_the_parent_ignores_sigint(emulator, tmp_path):
    """nohup, a background job, some CI runners: the child inherits an ignored SIGINT."""
    emulator.delay = 60
    env_file = write_env(tmp_path / ".env", settings_for(emulator))
    env = {"PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": "loopback", "PATH": "/usr/bin:/bin", **env_for(emulator)}
    process = subprocess.Popen([sys.executable, str(ROOT / "deploy.py"), "--env-file", str(env_file)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not any(record.method == "PUT" for record in emulator.requests) and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=20)
    finally:
        process.kill()
    assert process.returncode == 130 and "The deployment goes on in Azure." in stderr
