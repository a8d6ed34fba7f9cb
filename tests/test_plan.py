"""Re-runs: a deploy compares the group it would send with the live group, sends nothing when nothing differs,
stops a change Azure refuses in place before sending it, and --plan and --restart say and do the rest."""

import copy
import json

import pytest
from azure.mgmt.containerinstance.models import ContainerGroup

from deploy import build_container_group
from deploy_cli.load import load_settings
from deploy_cli.plan import differences, plan
from tests.conftest import ROOT, SECURE_VALUE
from tests.test_e2e import calls, deploy, typed

RECORDED = json.loads((ROOT / "tests" / "fixtures" / "live_group.json").read_text())


def settings_of(values: dict[str, str]):
    return load_settings({**values, "ACI_SECURE_ENV_DB_PASSWORD": SECURE_VALUE}, "dry-run")[0]


def live(body: dict) -> ContainerGroup:
    return ContainerGroup.deserialize(body)


# The comparison, fed the shapes real answers have -----------------------------------------------------
def test_the_group_as_get_answers_it_is_what_the_settings_say_but_for_the_secure_value():
    settings = load_settings({**RECORDED["settings"], "ACI_SECURE_ENV_DB_PASSWORD": "x"}, "dry-run")[0]
    assert build_container_group(settings).serialize() == RECORDED["put"]  # the body these settings send
    found = differences(live(RECORDED["get"]), settings)
    assert [(d.setting, d.live, d.wanted) for d in found] == [
        ("ACI_SECURE_ENV_DB_PASSWORD", "(secure value)", "(secure value)")
    ]
    decided = plan(live(RECORDED["get"]), settings)
    assert decided.action == "update" and "secure values cannot be read back" in decided.says
    assert decided.lines()[1] == "  ACI_SECURE_ENV_DB_PASSWORD: changed or not: cannot be read back"


def test_without_secure_values_the_recorded_group_is_already_as_configured():
    values = {k: v for k, v in RECORDED["settings"].items() if "SECURE" not in k}
    body = copy.deepcopy(RECORDED["get"])
    for container in body["properties"]["containers"]:
        variables = container["properties"]["environmentVariables"]
        container["properties"]["environmentVariables"] = [v for v in variables if "value" in v]
    decided = plan(live(body), load_settings(values, "dry-run")[0])
    assert decided.action == "nothing" and decided.differences == []
    assert decided.says == "container group private-app is already as configured; nothing sent, nothing restarted"


def changed(edit) -> list[str]:
    """The differences the comparison finds after edit(body) changed the recorded live group."""
    body = copy.deepcopy(RECORDED["get"])
    edit(body["properties"])
    return [d.line() for d in differences(live(body), settings_of(RECORDED["settings"])) if "SECURE" not in d.setting]


def main_container(properties: dict) -> dict:
    return properties["containers"][0]["properties"]


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda p: main_container(p).update(image="myregistry.azurecr.io/app:0.9"),
         "ACI_IMAGE: myregistry.azurecr.io/app:0.9 -> myregistry.azurecr.io/app:1.0"),
        (lambda p: main_container(p).update(command=["sleep", "infinity"]), "ACI_COMMAND: sleep infinity -> (none)"),
        (lambda p: main_container(p)["environmentVariables"][0].update(value="staging"),
         "ACI_ENV_MODE: staging -> production"),
        (lambda p: main_container(p)["environmentVariables"].pop(0), "ACI_ENV_MODE: (none) -> production"),
        (lambda p: main_container(p)["environmentVariables"].append({"name": "OLD", "value": "1"}),
         "ACI_ENV_OLD: 1 -> (none)"),
        (lambda p: main_container(p)["ports"].append({"port": 8080, "protocol": "TCP"}), "ACI_PORTS: 80, 8080 -> 80"),
        (lambda p: main_container(p)["resources"]["requests"].update(cpu=2), "ACI_CPU: 2 -> 1"),
        (lambda p: p["dnsConfig"].update(nameServers=["10.0.2.5"]), "ACI_DNS_SERVERS: 10.0.2.5 -> 10.0.2.4"),
        (lambda p: p["containers"].pop(1), "ACI_SIDECAR_LOGS_IMAGE: (none) -> myregistry.azurecr.io/logs:2"),
        (lambda p: p["initContainers"][0]["properties"].update(command=["true"]),
         "ACI_INIT_COMMAND: true -> mkdir -p /shared/config"),
    ],
    ids=["image", "command", "env value", "env added", "env removed", "port", "CPU", "DNS server", "sidecar added",
         "init command"],
)  # fmt: skip
def test_each_kind_of_change_is_found(edit, expected):
    assert expected in changed(edit)


def test_what_azure_adds_or_writes_its_own_way_is_no_difference():
    def azure_ways(properties):
        main_container(properties)["resources"]["requests"].update(cpu=1, memoryInGB=1.5)  # numbers by value
        main_container(properties)["ports"].reverse()
        properties["subnetIds"][0]["id"] = properties["subnetIds"][0]["id"].lower()  # IDs differing only in case
        properties["dnsConfig"]["nameServers"].append("168.63.129.16")  # Azure DNS, which ACI adds
        properties["instanceView"]["state"] = "Running"
        properties["ipAddress"]["ip"] = "10.0.0.9"

    assert changed(azure_ways) == []


def test_cpu_memory_restart_policy_subnet_and_region_are_refused_in_place():
    body = copy.deepcopy(RECORDED["get"])
    main_container(body["properties"])["resources"]["requests"]["cpu"] = 2
    body["properties"]["restartPolicy"] = "Never"
    body["location"] = "northeurope"
    decided = plan(live(body), settings_of(RECORDED["settings"]))
    assert decided.action == "refused"
    assert [d.line() for d in decided.differences] == [
        "AZURE_LOCATION: northeurope -> westeurope",
        "ACI_RESTART_POLICY: Never -> Always",
        "ACI_CPU: 2 -> 1",
    ]


# End to end, against the emulator ----------------------------------------------------------------------
def deploy_plain(emulator, tmp_path, *args, **changes):
    """A deploy whose settings hold no secure value, so that an unchanged group can be left alone."""
    return deploy(emulator, tmp_path, *args, **{"ACI_SECURE_ENV_DB_PASSWORD": None, **changes})


def group_key(emulator) -> str:
    return next(iter(emulator.groups))


def test_an_unchanged_rerun_reads_once_sends_nothing_and_restarts_nothing(emulator, tmp_path):
    assert deploy_plain(emulator, tmp_path).returncode == 0
    emulator.requests.clear()
    result = deploy_plain(emulator, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "container group aci-private-demo is already as configured; nothing sent, nothing restarted" in (
        result.stderr
    )
    assert "provisioning state: Succeeded" in result.stdout and "container aci-private-demo: Running" in result.stdout
    assert [c for c in calls(emulator) if c[1] == "group"] == [("GET", "group")]
    assert emulator.restarts.get(group_key(emulator), 0) == 0


def test_an_unchanged_group_whose_container_is_not_running_is_still_exit_1_with_its_log(emulator, tmp_path):
    emulator.outcome = "Crashing"
    assert deploy_plain(emulator, tmp_path).returncode == 1
    emulator.requests.clear()
    result = deploy_plain(emulator, tmp_path)
    assert result.returncode == 1
    assert "already as configured" in result.stderr and "  | aci-private-demo: fatal:" in result.stderr
    assert "PUT" not in {method for method, _ in calls(emulator)}


def test_an_unchanged_group_with_secure_values_is_deployed_saying_why(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    result = deploy(emulator, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "secure values cannot be read back from Azure" in result.stderr and "containers restart" in result.stderr
    assert "  ACI_SECURE_ENV_DB_PASSWORD: changed or not: cannot be read back" in result.stderr
    assert emulator.restarts[group_key(emulator)] == 1


def test_a_change_azure_applies_in_place_is_named_then_sent(emulator, tmp_path):
    assert deploy_plain(emulator, tmp_path).returncode == 0
    result = deploy_plain(emulator, tmp_path, ACI_IMAGE="acrprivatedemo.azurecr.io/aci-helloworld:v2")
    assert result.returncode == 0, result.stderr
    assert "its containers restart, and its private IP may change" in result.stderr
    assert (
        "  ACI_IMAGE: acrprivatedemo.azurecr.io/aci-helloworld:latest -> acrprivatedemo.azurecr.io/aci-helloworld:v2"
        in result.stderr
    )
    assert emulator.restarts[group_key(emulator)] == 1


def test_a_refused_change_is_stopped_before_anything_is_sent(emulator, tmp_path):
    assert deploy_plain(emulator, tmp_path).returncode == 0
    emulator.requests.clear()
    result = deploy_plain(emulator, tmp_path, ACI_MEMORY_GB="2")
    assert result.returncode == 1
    assert "  ACI_MEMORY_GB: 1.5 -> 2" in result.stderr and typed(tmp_path, "--recreate") in result.stderr
    assert [method for method, what in calls(emulator) if what == "group"] == ["GET"]
    assert emulator.restarts.get(group_key(emulator), 0) == 0


@pytest.mark.parametrize("how, says", [("finished", "has finished (state Succeeded)"), ("stopped", "has stopped")])
def test_a_finished_or_stopped_group_is_deployed_as_new(emulator, tmp_path, how, says):
    if how == "finished":
        emulator.outcome = "Completed"
    assert deploy_plain(emulator, tmp_path, ACI_RESTART_POLICY="Never").returncode == 0
    if how == "stopped":
        emulator.groups[group_key(emulator)]["stopped"] = True  # as az container stop leaves it
    result = deploy_plain(emulator, tmp_path, ACI_RESTART_POLICY="Never")
    assert result.returncode == 0, result.stderr
    assert f"container group aci-private-demo {says}" in result.stderr and "deploys it as new" in result.stderr
    assert [method for method, what in calls(emulator) if what == "group"].count("PUT") == 2


def test_plan_names_every_difference_and_sends_nothing_but_the_read(emulator, tmp_path):
    result = deploy_plain(emulator, tmp_path, "--plan")
    assert (
        result.returncode == 0
        and result.stdout == "container group aci-private-demo does not exist: a deploy creates it\n"
    )
    assert deploy_plain(emulator, tmp_path).returncode == 0
    emulator.requests.clear()
    result = deploy_plain(emulator, tmp_path, "--plan", ACI_ENV_MODE="blue", ACI_PORTS="80,8080")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "a deploy updates aci-private-demo in place; its containers restart, and its private IP may change:",
        "  ACI_ENV_MODE: (none) -> blue",
        "  ACI_PORTS: 80 -> 80, 8080",
    ]
    refused = deploy_plain(emulator, tmp_path, "--plan", ACI_CPU="2")
    assert refused.returncode == 1 and "  ACI_CPU: 1 -> 2" in refused.stdout and "--recreate" in refused.stdout
    assert {method for method, what in calls(emulator) if what == "group"} == {"GET"}
    assert emulator.restarts.get(group_key(emulator), 0) == 0


def test_a_change_made_in_the_portal_is_found_by_the_next_run(emulator, tmp_path):
    assert deploy_plain(emulator, tmp_path).returncode == 0
    stored = emulator.groups[group_key(emulator)]["body"]["properties"]["containers"][0]["properties"]
    stored["environmentVariables"] = [{"name": "DEBUG", "value": "1"}]  # someone added it by hand
    result = deploy_plain(emulator, tmp_path, "--plan")
    assert result.returncode == 0 and "  ACI_ENV_DEBUG: 1 -> (none)" in result.stdout


def test_restart_restarts_in_place_once_with_no_body_and_reports_like_a_deploy(emulator, tmp_path):
    assert deploy_plain(emulator, tmp_path).returncode == 0
    emulator.requests.clear()
    result = deploy_plain(emulator, tmp_path, "--restart")
    assert result.returncode == 0, result.stderr
    assert "Restarting the containers of container group aci-private-demo in place" in result.stderr
    assert "provisioning state: Succeeded" in result.stdout
    restart = next(r for r in emulator.requests if r.method == "POST" and r.path.endswith("/restart"))
    assert restart.body is None and restart.status == 204
    assert "PUT" not in {method for method, _ in calls(emulator)}
    assert emulator.restarts[group_key(emulator)] == 1


def test_restart_of_a_group_that_does_not_exist_says_deploy_it_first(emulator, tmp_path):
    result = deploy_plain(emulator, tmp_path, "--restart")
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "deploy it first" in result.stderr
    assert {method for method, what in calls(emulator) if what == "group"} == {"GET"}


def test_the_plans_shown_in_the_docs_are_what_plan_prints(emulator, tmp_path):
    page = (ROOT / "docs" / "updating.md").read_text()
    shown = page.split("What `--plan` prints, for each case", 1)[1].split("## ", 1)[0].split("```text\n")[1:]
    shown = [block.split("```", 1)[0] for block in shown]
    v2 = {"ACI_IMAGE": "acrprivatedemo.azurecr.io/aci-helloworld:v2", "ACI_ENV_GREETING": "hello"}
    secure = {"ACI_SECURE_ENV_DB_PASSWORD": SECURE_VALUE}
    printed = [deploy_plain(emulator, tmp_path, "--plan").stdout]
    assert deploy_plain(emulator, tmp_path).returncode == 0
    printed += [
        deploy_plain(emulator, tmp_path, "--plan").stdout,
        deploy_plain(emulator, tmp_path, "--plan", **v2).stdout,
    ]
    assert deploy_plain(emulator, tmp_path, **secure).returncode == 0
    printed.append(deploy_plain(emulator, tmp_path, "--plan", **secure).stdout)
    refused = deploy_plain(emulator, tmp_path, "--plan", **secure, ACI_CPU="2", ACI_RESTART_POLICY="OnFailure")
    printed.append(refused.stdout.replace(typed(tmp_path, "--recreate"), "python deploy.py --recreate"))
    emulator.groups[group_key(emulator)]["stopped"] = True
    printed.append(deploy_plain(emulator, tmp_path, "--plan", **secure).stdout)
    assert printed == shown
