"""Round 4: promises of the README and INTERFACE that did not hold, and what real Azure does that deploy.py must
meet (FACTS.md, "Round 4"), each as users meet it."""

import dataclasses
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from azure.core.exceptions import HttpResponseError

import deploy as sample
from deploy_cli.load import load_settings
from deploy_cli.settings import SettingsError
from tests.conftest import ROOT, run_deploy
from tests.emulator.authorization import ACR_PULL
from tests.test_check import check
from tests.test_e2e import deploy, typed
from tests.test_plan import deploy_plain


# 2. After --timeout or Ctrl-C: how to follow the group and delete it, never "fix the cause and recreate" ------
def test_a_timeout_says_how_to_follow_the_group_and_reads_nothing_it_has_not_seen_waiting(emulator, tmp_path):
    emulator.delay = 30
    result = deploy(emulator, tmp_path, "--timeout", "2")
    assert result.returncode == 4
    assert "The deployment goes on in Azure." in result.stderr and "az container show" in result.stderr
    assert f"or run {typed(tmp_path)} again: it finds the group" in result.stderr
    assert typed(tmp_path, "--delete") in result.stderr
    assert "--recreate" not in result.stderr and "Fix the cause" not in result.stderr
    assert "What deploy.py read about it" not in result.stderr  # no state seen yet: nothing to explain


def test_a_rerun_while_azure_still_deploys_the_group_sends_nothing(emulator, tmp_path):
    emulator.delay = 30
    assert deploy_plain(emulator, tmp_path, "--timeout", "2").returncode == 4
    result = deploy_plain(emulator, tmp_path)
    assert result.returncode == 4, result.stderr
    assert "Azure is still deploying it (provisioning" in result.stderr and "nothing sent" in result.stderr
    assert [r.method for r in emulator.requests if r.method == "PUT"] == ["PUT"]


# 3. --settle is bounded, visible, and a usage error where it means nothing ------------------------------------
@pytest.mark.parametrize(
    "flags",
    [["--settle", "1e9"], ["--check", "--settle", "5"], ["--delete", "--settle", "5"], ["--dry-run", "--settle", "0"]],
)
def test_a_settle_that_cannot_be_is_a_usage_error(flags):
    result = run_deploy(*flags, "--env-file", str(ROOT / ".env.example"))
    assert result.returncode == 2 and "--settle" in result.stderr and "Traceback" not in result.stderr


def test_the_settle_watch_says_it_starts_and_the_timeout_bounds_it(emulator, tmp_path):
    started = time.monotonic()
    result = deploy(emulator, tmp_path, "--settle", "600", "--timeout", "3")
    assert result.returncode == 0, result.stderr
    assert re.search(r"Watching the containers for \d\.?\d* s \(--settle\) \.\.\.", result.stderr), result.stderr
    assert time.monotonic() - started < 3 + 2


# 4. --help lists every setting pattern, every exit code, one usage line ---------------------------------------
def test_help_lists_every_setting_pattern_and_one_usage_line():
    result = run_deploy("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    for pattern in (
        "ACI_INIT_ENV_<NAME>",
        "ACI_INIT_SECURE_ENV_<NAME>",
        "ACI_INIT_<N>_IMAGE",
        "ACI_INIT_<N>_COMMAND",
        "ACI_INIT_<N>_ENV_<VAR>",
        "ACI_INIT_<N>_SECURE_ENV_<VAR>",
        "ACI_SIDECAR_<NAME>_CPU",
        "ACI_SIDECAR_<NAME>_MEMORY_GB",
        "ACI_SIDECAR_<NAME>_PORTS",
        "ACI_SIDECAR_<NAME>_COMMAND",
        "ACI_SIDECAR_<NAME>_ENV_<VAR>",
        "ACI_SIDECAR_<NAME>_SECURE_ENV_<VAR>",
    ):
        assert pattern in text
    assert "Azure could not be reached" in text
    assert result.stdout.count("usage:") == 1 and "USAGE" not in result.stdout
    assert "[--env-file PATH]" in text and "[--timeout SECONDS] [--settle SECONDS]" in text  # wrapped per Python


# 5. Every container settings error names the variable as typed ------------------------------------------------
def problems(settings: dict[str, str]) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        load_settings(settings, "dry-run")
    return caught.value.problems


def test_a_sidecar_named_like_the_group_or_an_init_container_names_its_image_variable(settings):
    found = problems(
        {
            **settings,
            "ACI_CONTAINER_GROUP_NAME": "app",
            "ACI_SIDECAR_APP_IMAGE": settings["ACI_IMAGE"],
            "ACI_INIT_IMAGE": "mcr.microsoft.com/azurelinux/busybox:1.36",
            "ACI_SIDECAR_INIT_IMAGE": settings["ACI_IMAGE"],
        }
    )
    assert any(
        p.startswith("ACI_SIDECAR_APP_IMAGE: the sidecar 'app' has the name of the main container") for p in found
    )
    assert any(
        p.startswith("ACI_SIDECAR_INIT_IMAGE: the sidecar 'init' has the name of init container init") for p in found
    )


def test_a_sidecar_name_with_an_underscore_names_the_variables_it_came_from(settings):
    found = problems({**settings, "ACI_SIDECAR_MY_LOGS_IMAGE": settings["ACI_IMAGE"]})
    assert any(p.startswith("ACI_SIDECAR_MY_LOGS_IMAGE: the sidecar name 'MY_LOGS' must be") for p in found), found


def test_an_init_container_numbered_two_ways_is_refused_not_dropped(settings):
    image = "mcr.microsoft.com/azurelinux/busybox:1.36"
    found = problems({**settings, "ACI_INIT_3_IMAGE": image, "ACI_INIT_03_IMAGE": image})
    assert "ACI_INIT_03_... and ACI_INIT_3_... are both init container 3" in " ".join(found), found


# 7. Init images in a private registry are not promised ---------------------------------------------------------
def test_an_init_image_in_an_azure_registry_is_warned_about_in_a_dry_run_and_check(emulator, tmp_path):
    private = {"ACI_INIT_IMAGE": "acrprivatedemo.azurecr.io/migrate:1.0"}
    dry = run_deploy("--dry-run", "--env-file", str(ROOT / ".env.example"), env=private)
    assert dry.returncode == 0 and "warning: ACI_INIT_IMAGE: acrprivatedemo.azurecr.io/migrate:1.0 is in an Azure" in (
        dry.stderr
    )
    result, _ = check(emulator, tmp_path, **private)
    assert "warning: ACI_INIT_IMAGE:" in result.stderr and "managed identities" in result.stderr
    public = run_deploy("--dry-run", "--env-file", str(ROOT / ".env.example"))
    assert "warning" not in public.stderr


# 8. ABAC conditions --------------------------------------------------------------------------------------------
CONDITION = (
    "((!(ActionMatches{'Microsoft.ContainerRegistry/registries/repositories/content/read'})) OR "
    "(@Resource[Microsoft.ContainerRegistry/registries/repositories:name] StringStartsWithIgnoreCase '{prefix}'))"
)


@pytest.mark.parametrize("prefix, warned", [("tools/", True), ("ACI-", False)])
def test_a_pull_role_with_a_condition_that_may_exclude_the_repository_is_a_warning(emulator, tmp_path, prefix, warned):
    emulator.role_assignments.clear()
    condition = CONDITION.replace("{prefix}", prefix)
    emulator.assign(
        ACR_PULL, emulator.identity["principalId"], emulator.registry_id(emulator.registry), condition=condition
    )
    result, lines = check(emulator, tmp_path)
    line = lines["pull role on acrprivatedemo.azurecr.io"]
    if warned:
        assert line.startswith("warning ") and "may not let the identity read aci-helloworld" in line, result.stdout
        assert condition in line
    else:
        assert line.startswith("ok "), result.stdout


# 9. Regions ----------------------------------------------------------------------------------------------------
def test_a_region_that_does_not_offer_container_groups_is_a_problem_naming_the_closest(emulator, tmp_path):
    result, lines = check(emulator, tmp_path, AZURE_LOCATION="westeurop")
    line = lines["provider Microsoft.ContainerInstance"]
    assert line.startswith("problem ") and "closest region that does is westeurope" in line, result.stdout
    assert "fix: set AZURE_LOCATION=westeurope" in result.stdout


def test_azure_refuses_an_unknown_region_and_a_move_with_a_hint_naming_the_region(emulator, tmp_path):
    unknown = deploy(emulator, tmp_path, AZURE_LOCATION="westeurop")
    assert unknown.returncode == 1 and "error: LocationNotAvailableForResourceType" in unknown.stderr
    assert "the closest is westeurope" in unknown.stderr
    assert deploy(emulator, tmp_path).returncode == 0
    moved = deploy(emulator, tmp_path, "--plan", AZURE_LOCATION="northeurope")
    assert moved.returncode == 1 and "AZURE_LOCATION: westeurope -> northeurope" in moved.stdout


def test_the_emulator_refuses_a_group_moved_to_another_region_as_arm_does(emulator, monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    settings, _ = load_settings(emulator.settings())
    client = sample.create_client(settings, sample.create_credential(settings))
    sample.create_or_update(client, settings, timeout=10)
    with pytest.raises(HttpResponseError) as refused:  # the sample alone compares nothing: Azure's answer
        sample.create_or_update(client, dataclasses.replace(settings, location="northeurope"), timeout=10)
    assert refused.value.error.code == "InvalidResourceLocation"
    assert "already exists in location 'westeurope'" in refused.value.error.message


def test_the_prod_chain_is_azure_identitys_order():
    from deploy_cli.sign_in import TOKEN_CREDENTIALS

    assert TOKEN_CREDENTIALS["prod"] == ("client_secret", "certificate", "federated_token", "managed_identity")


# 12. The emulator writes an env file for each way of signing in, and breaks its world on demand ---------------
README = (ROOT / "README.md").read_text()
TRY_IT = README.split("## Try it without Azure and run the tests\n", 1)[1]
SIGNS_IN_AS = {
    "client-secret": "client secret",
    "federated-token": "federated token",
    "azure-cli": "Azure CLI",
    "managed-identity": "managed identity",
}


def serve(tmp_path, *flags):
    """python -m tests.emulator as the README starts it, in the background: the process and its printed command."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--env-file", ".env.emulator", *flags],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = [process.stdout.readline() for _ in range(3)]
    return process, lines[-1]


def stop(process) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    finally:
        process.kill()


def readme_values(flag: str) -> list[str]:
    """The values the README lists for a flag of the emulator, in its prose."""
    sentence = (
        TRY_IT.split(f"`{flag}`", 1)[1].split(";", 1)[0]
        if flag == "--sign-in"
        else (TRY_IT.split(f"`{flag}`", 1)[1].split(". ", 1)[0])
    )
    return [value for value in re.findall(r"`([a-z][a-z-]*)`", sentence) if value != "az"]


@pytest.mark.parametrize("way", readme_values("--sign-in"))
def test_each_way_the_emulator_signs_in_deploys_as_the_readme_says(tmp_path, way):
    assert readme_values("--sign-in") == list(SIGNS_IN_AS)
    process, command = serve(tmp_path, "--sign-in", way, "--delay", "0.3")
    try:
        path = re.search(r"PATH=(\S+):\$PATH", command)
        env = {"REQUESTS_CA_BUNDLE": str(tmp_path / ".emulator-ca.pem")}
        env |= {"PATH": f"{path[1]}:/usr/bin:/bin"} if path else {}
        result = run_deploy("--env-file", ".env.emulator", "--settle", "0", cwd=tmp_path, network="loopback", env=env)
    finally:
        stop(process)
    assert result.returncode == 0, result.stderr
    signing_in = next(line for line in result.stderr.splitlines() if line.startswith("Signing in with "))
    assert SIGNS_IN_AS[way] in signing_in
    assert "provisioning state: Succeeded" in result.stdout


def test_the_worlds_the_emulator_breaks_are_each_a_problem_check_finds(tmp_path):
    breaks = readme_values("--break")
    assert breaks == ["no-delegation", "no-pull-role", "no-trusted-services", "vnet-elsewhere", "abac"]
    process, _ = serve(tmp_path, *[flag for name in breaks for flag in ("--break", name)])
    try:
        env = {"REQUESTS_CA_BUNDLE": str(tmp_path / ".emulator-ca.pem")}
        result = run_deploy("--env-file", ".env.emulator", "--check", cwd=tmp_path, network="loopback", env=env)
    finally:
        stop(process)
    assert result.returncode == 1, result.stderr
    problems = [line for line in result.stdout.splitlines() if line.startswith("problem ")]
    assert [line.split(":")[0].split(None, 1)[1] for line in problems] == [
        "subnet snet-aci",
        "virtual network vnet-aci",
        "registry acrprivatedemo.azurecr.io",
        "pull role on acrprivatedemo.azurecr.io",
    ]
    assert "in ABAC (repository permissions) mode" in result.stdout


# 13. The federated token file as CI scripts write it -----------------------------------------------------------
@pytest.mark.parametrize(
    "write, expected",
    [
        (
            lambda token: f'{{"count": 1, "value": "{token}"}}',
            "GitHub's JSON answer; write its value with: jq -j .value",
        ),
        (lambda token: f"Bearer {token}", "without 'Bearer ' in front"),
    ],
)
def test_a_token_file_written_the_wrong_way_says_which_and_how(emulator, tmp_path, write, expected):
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    (tmp_path / "token").write_text(write(token))
    result = deploy(emulator, tmp_path, AZURE_CLIENT_SECRET=None, AZURE_FEDERATED_TOKEN_FILE=str(tmp_path / "token"))
    assert result.returncode == 2 and "AZURE_FEDERATED_TOKEN_FILE" in result.stderr and expected in result.stderr
    assert token not in result.stderr and emulator.requests == []


def test_a_token_file_with_a_trailing_newline_is_warned_about(tmp_path, settings):
    token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    (tmp_path / "token").write_text(token + "\n")
    values = {**settings, "AZURE_CLIENT_SECRET": "", "AZURE_FEDERATED_TOKEN_FILE": str(tmp_path / "token")}
    _, warnings = load_settings(values)
    assert any("ends with a newline" in w and "jq -j .value" in w for w in warnings), warnings


def test_the_ci_workflow_writes_the_token_failing_on_an_http_error_and_checks_first():
    page = (ROOT / "docs" / "sign-in.md").read_text()
    workflow = page.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert "curl -fsS" in workflow and "jq -j .value" in workflow
    assert workflow.index("python deploy.py --check") < workflow.index("python deploy.py\n")


# 14. Messages --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "token",
    ["ghp_16C7e42F292c6912E7710c838347Ae178B4a", "github_pat_11ABCDEFG0123456789_abc", "glpat-xxxxxxxxxxxxxxxxxxxx"],
)
def test_a_personal_access_token_pasted_anywhere_is_never_echoed(settings, token):
    for variable in ("ACI_RESTART_POLICY", "AZURE_RESOURCE_GROUP", "ACI_SUBNET_ID"):
        found = " ".join(problems({**settings, variable: token}))
        assert token not in found and "it looks like a token or a secret" in found


def test_a_yaml_env_file_and_an_unreadable_line_are_named_with_the_file(tmp_path):
    (tmp_path / "yaml.env").write_text("AZURE_RESOURCE_GROUP: rg-apps\n")
    yaml = run_deploy("--dry-run", "--env-file", str(tmp_path / "yaml.env"))
    assert yaml.returncode == 2 and "has YAML lines (NAME: value, line 1)" in yaml.stderr
    (tmp_path / "odd.env").write_text((ROOT / ".env.example").read_text() + "ACI_ENV_X='unclosed\n")
    odd = run_deploy("--dry-run", "--env-file", str(tmp_path / "odd.env"))
    assert f"warning: {tmp_path / 'odd.env'} line" in odd.stderr and "cannot be read as NAME=value" in odd.stderr


def test_a_group_setting_given_to_one_container_says_it_is_the_groups(settings):
    _, warnings = load_settings(
        {**settings, "ACI_SIDECAR_LOGS_IMAGE": settings["ACI_IMAGE"], "ACI_SIDECAR_LOGS_RESTART_POLICY": "Never"},
        "dry-run",
    )
    [warning] = [w for w in warnings if "RESTART_POLICY" in w]
    assert "ACI_RESTART_POLICY is the group's" in warning and "did you mean" not in warning


@pytest.mark.parametrize(
    "variable, value, expected",
    [
        ("ACI_SHARED_DIR", "/", "a folder of its own, such as /shared"),
        ("ACI_SHARED_DIR", "/etc/app", "a folder of its own"),
        ("AZURE_SUBSCRIPTION_ID", "{11111111-2222-3333-4444-555555555555}", "without the braces"),
        ("ACI_IMAGE", "https://myregistry.azurecr.io/app:1.0", "without https:// in front"),
        ("ACI_SIDECAR_LOGS_IMAGE", "nginx:1.27", "docker.io/library/nginx:<tag>"),
    ],
)
def test_values_written_a_common_wrong_way_say_what_to_change(settings, variable, value, expected):
    assert expected in " ".join(problems({**settings, variable: value}))


# 15, 16. --check's fixes, and the demo -------------------------------------------------------------------------
def test_the_fix_for_a_missing_identity_gives_the_new_principal_its_pull_role(emulator, tmp_path):
    emulator.identities.clear()
    result, _ = check(emulator, tmp_path)
    assert "fix: az identity create" in result.stdout and "--role AcrPull --scope <registry ID>" in result.stdout


def test_a_failed_demo_says_its_commands_name_a_file_that_is_gone_and_the_summary_comes_before_the_log():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "tests" / "guard"), "DEPLOY_TEST_NETWORK": "loopback"}
    result = subprocess.run(
        [sys.executable, "-m", "tests.emulator", "--demo", "--delay", "0.5", "--outcome", "Crashing"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
        env=env,
    )
    assert "they are what a real run prints" in result.stdout
    assert result.stdout.index("container aci-private-demo: Waiting") < result.stdout.index("The end of its log:")


# 11. ACI restarts a container that exits, as the restart policy says -------------------------------------------
@pytest.mark.parametrize("policy", ["Always", "OnFailure"])
def test_an_app_that_exits_with_an_error_is_restarted_and_the_summary_says_how_it_ended(emulator, tmp_path, policy):
    emulator.outcome = "Exited"
    result = deploy(emulator, tmp_path, ACI_RESTART_POLICY=policy)
    assert result.returncode == 1
    assert "container aci-private-demo: Waiting, restarts 2" in result.stdout, result.stdout
    assert "it last exited with code 1" in result.stderr


def test_a_virtual_network_id_as_the_subnet_gets_what_the_one_real_trace_got(emulator, monkeypatch):
    """deploy.py refuses it before sending (ACI_SUBNET_ID must name a subnet); the sample alone sends it."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    settings, _ = load_settings(emulator.settings())
    vnet = dataclasses.replace(settings, subnet_id=settings.subnet_id.split("/subnets/")[0])
    with pytest.raises(HttpResponseError) as refused:
        sample.create_or_update(sample.create_client(vnet, sample.create_credential(vnet)), vnet, timeout=30)
    assert refused.value.status_code == 500 and refused.value.error.code == "InternalServerError"
