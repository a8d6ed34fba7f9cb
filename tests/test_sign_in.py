"""Signing in without a password: a federated token (CI with OIDC), the Azure CLI's account, a managed
identity; and the choice between the ways, made before anything is sent. deploy.py runs as a subprocess
with the real azure-identity against the emulator, behind the network guard."""

import json
import os
import re
import shutil
import threading
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.conftest import run_deploy, write_env
from tests.emulator import worlds
from tests.emulator.entra import FederatedCredential
from tests.test_e2e import assert_no_secrets, calls, env_for

ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:contoso/aci-private:environment:production"
NO_SECRET = {"AZURE_CLIENT_SECRET": ""}


def deploy_with(emulator, tmp_path, *args, env=None, **changes):
    settings = {**emulator.settings(), **NO_SECRET, **changes}
    env_file = write_env(tmp_path / ".env", {k: v for k, v in settings.items() if v != ""})
    environment = {**env_for(emulator), **(env or {})}
    result = run_deploy("--env-file", str(env_file), "--settle", "0", *args, network="loopback", env=environment)
    assert_no_secrets(emulator, result.stdout + result.stderr)
    return result


def github_token(key, **claims) -> str:
    """What GitHub Actions' OIDC provider issues (github/docs: lives 300 s, nbf 600 s before iat)."""
    now = int(time.time())
    body = {"iss": ISSUER, "sub": SUBJECT, "aud": "api://AzureADTokenExchange", "iat": now, "nbf": now - 600,
            "exp": now + 300, **claims}  # fmt: skip
    return jwt.encode(body, key, algorithm="RS256", headers={"kid": "test-key"})


@pytest.fixture
def issuer_key(emulator):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    emulator.federated_credentials.append(FederatedCredential(ISSUER, SUBJECT, key.public_key()))
    return key


def token_file(tmp_path, token: str) -> str:
    path = tmp_path / "oidc-token"
    path.write_text(token)
    return str(path)


def test_a_federated_token_deploys_with_no_secret_anywhere(emulator, tmp_path, issuer_key):
    token = github_token(issuer_key)
    result = deploy_with(emulator, tmp_path, AZURE_FEDERATED_TOKEN_FILE=token_file(tmp_path, token))
    assert result.returncode == 0, result.stderr
    assert "Signing in with a federated token from AZURE_FEDERATED_TOKEN_FILE (WorkloadIdentityCredential)" in (
        result.stderr
    )
    assert token not in result.stdout + result.stderr
    # azure-identity's own client: one token POST, no discovery document, then the deployment
    assert calls(emulator)[:3] == [("POST", "token"), ("GET", "group"), ("PUT", "group")]
    assert "provisioning state: Succeeded" in result.stdout


@pytest.mark.parametrize(
    "claims, code, hint",
    [
        ({"sub": "repo:contoso/aci-private:ref:refs/heads/main"}, "AADSTS700213", "subjects are case-sensitive"),
        ({"sub": SUBJECT.replace("contoso", "Contoso")}, "AADSTS7002138", "only if case is ignored"),
        ({"exp": int(time.time()) - 60}, "AADSTS700024", "write AZURE_FEDERATED_TOKEN_FILE just before"),
        ({"iss": "https://gitlab.example.com"}, "AADSTS700211", "no federated credential has the token's issuer"),
        ({"aud": "api://other"}, "AADSTS700212", "audience"),
    ],
)
def test_a_refused_federated_token_exits_3_with_the_hint_for_its_code(emulator, tmp_path, issuer_key, claims, code,
                                                                       hint):  # fmt: skip
    token = github_token(issuer_key, **claims)
    result = deploy_with(emulator, tmp_path, AZURE_FEDERATED_TOKEN_FILE=token_file(tmp_path, token))
    assert result.returncode == 3, result.stderr
    assert code in result.stderr and hint in result.stderr
    assert token not in result.stderr and "Traceback" not in result.stderr
    assert not any(call[1] == "group" for call in calls(emulator))


@pytest.mark.parametrize(
    "content, expected",
    [(None, "is not a readable file"), ("", "it is empty"), ("   \n", "it is empty"),
     ("ghs_notajwt-but-a-github-token", "holds something else"),
     ("{\"value\": \"x.y.z\"}", "GitHub's JSON answer; write its value with: jq -j .value")],
    ids=["missing", "empty", "blank", "not-a-jwt", "json-not-extracted"],
)  # fmt: skip
def test_a_bad_token_file_is_a_settings_error_naming_it_and_nothing_is_sent(emulator, tmp_path, content, expected):
    path = tmp_path / "oidc-token"
    if content is not None:
        path.write_text(content)
    result = deploy_with(emulator, tmp_path, AZURE_FEDERATED_TOKEN_FILE=str(path))
    assert result.returncode == 2, result.stderr
    assert "AZURE_FEDERATED_TOKEN_FILE" in result.stderr and expected in result.stderr
    assert emulator.requests == [] and "Traceback" not in result.stderr
    if content and content.strip():
        assert content.strip() not in result.stderr


# The Azure CLI --------------------------------------------------------------------------------------
def standin_az(tmp_path, emulator, signed_in=True, subscriptions=None) -> dict[str, str]:
    """A stand-in az first on PATH (tests/az_standin.py, printing what az 2.91.0 prints), signed in
    (or not) as the emulator's service principal: the environment for deploy.py."""
    folder, state = worlds.standin_az(emulator, tmp_path, signed_in, subscriptions)
    return {"PATH": f"{folder}:/usr/bin:/bin", "AZ_STANDIN_STATE": str(state)}


def az_calls(tmp_path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "az-calls.jsonl").read_text().splitlines()]


AS_YOURSELF = {"AZURE_TENANT_ID": "", "AZURE_CLIENT_ID": "", "AZURE_AUTHORITY_HOST": ""}  # .env without credentials


def test_the_azure_cli_account_deploys_for_the_subscription_with_no_credentials_in_the_env_file(emulator, tmp_path):
    env = standin_az(tmp_path, emulator)
    result = deploy_with(emulator, tmp_path, env=env, **AS_YOURSELF)
    assert result.returncode == 0, result.stderr
    assert "Signing in with the Azure CLI's signed-in account (AzureCliCredential)" in result.stderr
    [argv] = az_calls(tmp_path)  # one az process per run: the ARM client keeps the token
    assert argv == ["account", "get-access-token", "--output", "json", "--resource", emulator.url,
                    "--subscription", emulator.subscription_id]  # fmt: skip
    assert calls(emulator)[:3] == [("POST", "token"), ("GET", "group"), ("PUT", "group")]  # the stand-in's sign-in


def test_a_tenant_beside_the_azure_cli_is_ignored_with_a_warning_so_az_does_not_refuse(emulator, tmp_path):
    env = standin_az(tmp_path, emulator)
    result = deploy_with(emulator, tmp_path, env=env, AZURE_CLIENT_ID="", AZURE_AUTHORITY_HOST="",
                         AZURE_TOKEN_CREDENTIALS="AzureCliCredential")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "warning: AZURE_TENANT_ID is set, but the Azure CLI's signed-in account" in result.stderr
    assert "--tenant" not in az_calls(tmp_path)[0]


@pytest.mark.parametrize(
    "signed_in, subscriptions, expected",
    [(False, None, "run az login"), (True, ["0b5c41b0-0000-4000-8000-00000000ffff"], "az login --tenant")],
    ids=["not-signed-in", "other-tenant"],
)
def test_az_not_signed_in_or_in_another_tenant_exits_3_saying_what_to_run(emulator, tmp_path, signed_in,
                                                                           subscriptions, expected):  # fmt: skip
    env = standin_az(tmp_path, emulator, signed_in, subscriptions)
    result = deploy_with(emulator, tmp_path, env=env, **AS_YOURSELF)
    assert result.returncode == 3, result.stderr
    assert expected in result.stderr.split("hint:", 1)[1] and "Traceback" not in result.stderr
    assert emulator.requests == []


def test_az_not_installed_exits_3_saying_so(emulator, tmp_path):
    result = deploy_with(emulator, tmp_path, env={"PATH": str(tmp_path)}, **AS_YOURSELF)
    assert result.returncode == 3, result.stderr
    assert "Azure CLI not found" in result.stderr and "install the Azure CLI" in result.stderr
    assert emulator.requests == []


def real_az() -> str | None:
    return os.environ.get("DEPLOY_TEST_AZ") or shutil.which("az")


@pytest.mark.skipif(not real_az(), reason="no Azure CLI installed (put az on PATH, or name it in DEPLOY_TEST_AZ)")
def test_the_real_azure_cli_signed_in_to_the_emulator_deploys(emulator, tmp_path):
    from bench.run import az_setup  # signs az in to the emulator's cloud, as the benchmark does

    config = tmp_path / "az-config"
    config.mkdir()
    env = az_setup(real_az(), emulator, config)
    env["PATH"] = f"{Path(real_az()).parent}:{os.environ['PATH']}"
    result = deploy_with(emulator, tmp_path, env=env, **AS_YOURSELF)
    assert result.returncode == 0, result.stderr
    assert "provisioning state: Succeeded" in result.stdout


# A managed identity ---------------------------------------------------------------------------------
MANAGED_IDENTITY_CLIENT_ID = "5e1f7c2a-0000-4000-8000-0000000000a1"


def test_a_managed_identity_deploys_only_when_named_and_nothing_else_is_contacted(emulator, tmp_path):
    emulator.managed_identities.add(MANAGED_IDENTITY_CLIENT_ID)
    env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": emulator.url}  # IMDS of this "machine" is the emulator
    result = deploy_with(emulator, tmp_path, env=env, AZURE_TOKEN_CREDENTIALS="ManagedIdentityCredential",
                         AZURE_CLIENT_ID=MANAGED_IDENTITY_CLIENT_ID)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Signing in with this machine's managed identity (ManagedIdentityCredential)" in result.stderr
    ignored = "warning: AZURE_TENANT_ID is set, but this machine's managed identity (ManagedIdentityCredential) does"
    assert ignored in result.stderr
    imds = emulator.requests[0]
    assert imds.path == "/metadata/identity/oauth2/token" and imds.query["client_id"] == [MANAGED_IDENTITY_CLIENT_ID]
    assert [call for call in calls(emulator)][1:3] == [("GET", "group"), ("PUT", "group")]  # loopback only


def test_a_managed_identity_this_machine_lacks_exits_3_with_a_hint(emulator, tmp_path):
    env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": emulator.url}
    result = deploy_with(emulator, tmp_path, env=env, AZURE_TOKEN_CREDENTIALS="ManagedIdentityCredential",
                         AZURE_CLIENT_ID=MANAGED_IDENTITY_CLIENT_ID)  # fmt: skip
    assert result.returncode == 3, result.stderr
    assert f"no managed identity with client ID {MANAGED_IDENTITY_CLIENT_ID}:" in result.stderr
    assert not any(call[1] == "group" for call in calls(emulator))


# The choice, before anything is sent ----------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, named",
    [
        ({"AZURE_CLIENT_SECRET": "x", "AZURE_CLIENT_CERTIFICATE_PATH": "/etc/hostname"},
         ["AZURE_CLIENT_CERTIFICATE_PATH and AZURE_CLIENT_SECRET are both set; keep one"]),
        ({"AZURE_CLIENT_SECRET": "x", "AZURE_FEDERATED_TOKEN_FILE": "TOKEN"},
         ["AZURE_FEDERATED_TOKEN_FILE and AZURE_CLIENT_SECRET are both set; keep one"]),
        ({"AZURE_CLIENT_SECRET": ""}, ["AZURE_CLIENT_ID is set, but nothing to sign in with",
                                       "unset AZURE_CLIENT_ID to sign in as the Azure CLI's account"]),
        ({"AZURE_TOKEN_CREDENTIALS": "AzureCliCredential", "AZURE_CLIENT_SECRET": "x"},
         ["AZURE_CLIENT_SECRET set, but AZURE_TOKEN_CREDENTIALS=AzureCliCredential does not use it"]),
        ({"AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential", "AZURE_FEDERATED_TOKEN_FILE": "TOKEN"},
         ["AZURE_FEDERATED_TOKEN_FILE set, but AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential"]),
        ({"AZURE_TOKEN_CREDENTIALS": "DefaultAzureCredential", "AZURE_CLIENT_SECRET": "x"},
         ["AZURE_TOKEN_CREDENTIALS='DefaultAzureCredential' is not a sign-in way azure-identity names",
          "WorkloadIdentityCredential, AzureCliCredential, ManagedIdentityCredential, dev or prod"]),
        ({"AZURE_TOKEN_CREDENTIALS": "EnvironmentCredential", "AZURE_CLIENT_SECRET": ""},
         ["AZURE_TOKEN_CREDENTIALS=EnvironmentCredential needs AZURE_CLIENT_SECRET or AZURE_CLIENT_CERTIFICATE_PATH"]),
        ({"AZURE_TOKEN_CREDENTIALS": "WorkloadIdentityCredential", "AZURE_CLIENT_SECRET": ""},
         ["AZURE_FEDERATED_TOKEN_FILE is not set"]),
        ({"AZURE_FEDERATED_TOKEN_FILE": "TOKEN", "AZURE_TENANT_ID": "", "AZURE_CLIENT_SECRET": ""},
         ["AZURE_TENANT_ID is not set"]),
    ],
    ids=["secret+certificate", "secret+token", "client-id-alone", "cli+secret", "mi+token", "unknown-selector",
         "environment-without-either", "workload-without-file", "token-without-tenant"],
)  # fmt: skip
def test_every_conflict_or_missing_piece_exits_2_naming_the_variables_and_sends_nothing(emulator, tmp_path, changes,
                                                                                          named):  # fmt: skip
    token = tmp_path / "token"
    token.write_text("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
    changes = {k: str(token) if v == "TOKEN" else v for k, v in changes.items()}
    result = deploy_with(emulator, tmp_path, **changes)
    assert result.returncode == 2, result.stderr
    for text in named:
        assert text in result.stderr
    assert emulator.requests == [] and result.stdout == ""
    assert token.read_text() not in result.stderr and emulator.client_secret not in result.stderr


def test_prod_means_the_managed_identity_when_no_credential_is_set(emulator, tmp_path):
    emulator.managed_identities.add("")  # a system-assigned identity
    env = {"AZURE_POD_IDENTITY_AUTHORITY_HOST": emulator.url}
    result = deploy_with(emulator, tmp_path, env=env, AZURE_TOKEN_CREDENTIALS="prod", **AS_YOURSELF)
    assert result.returncode == 0, result.stderr
    assert "this machine's managed identity" in result.stderr and "client_id" not in emulator.requests[0].query


def test_the_secret_way_sends_exactly_what_it_sent_before(emulator, tmp_path):
    result = deploy_with(emulator, tmp_path, AZURE_CLIENT_SECRET=emulator.client_secret)
    assert result.returncode == 0, result.stderr
    assert "Signing in with the service principal's client secret (ClientSecretCredential)" in result.stderr
    assert calls(emulator) == [("GET", "openid"), ("POST", "token"), ("GET", "group"), ("PUT", "group"),
                               ("GET", "operation"), ("GET", "group")]  # fmt: skip


def test_the_sign_in_line_and_errors_never_show_the_token_file_content(emulator, tmp_path, issuer_key):
    token = github_token(issuer_key, sub="repo:someone/else:ref:refs/heads/main")
    result = deploy_with(emulator, tmp_path, "-v", AZURE_FEDERATED_TOKEN_FILE=token_file(tmp_path, token))
    assert result.returncode == 3
    for part in token.split("."):
        assert part not in result.stdout + result.stderr


def test_one_sign_in_serves_the_reads_after_a_failure_when_the_token_file_has_expired_since(
    emulator, tmp_path, issuer_key
):
    """CI's federated token lives about five minutes and a failed deployment can take longer: the reads after
    the failure use the ARM token the run got at the start, never the token file again."""
    emulator.delay, emulator.outcome = 1.5, "Failed"  # accepted, then the pull fails
    path = token_file(tmp_path, github_token(issuer_key))
    expired = github_token(issuer_key, iat=int(time.time()) - 900, exp=int(time.time()) - 600)

    def expire_after_sign_in():
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(r.method == "POST" for r in emulator.requests):
            time.sleep(0.05)
        Path(path).write_text(expired)

    watcher = threading.Thread(target=expire_after_sign_in, daemon=True)
    watcher.start()
    result = deploy_with(emulator, tmp_path, AZURE_FEDERATED_TOKEN_FILE=path)
    watcher.join()
    assert Path(path).read_text() == expired, "the token file was replaced while deploy.py ran"
    assert result.returncode == 1, result.stderr
    assert "What deploy.py read about it" in result.stderr
    assert re.search(r"ok +identity id-aci-acrpull", result.stderr), result.stderr
    assert "could not sign in" not in result.stderr and "AADSTS700024" not in result.stderr
    assert [c for c in calls(emulator) if c[0] == "POST"] == [("POST", "token")]
