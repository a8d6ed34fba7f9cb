"""Groups of containers: sidecars, init containers in order, a shared directory. The body the builder
makes, the checks made before sending, the rules the emulator enforces as ACI does, and end to end."""

import dataclasses
import json
import re

import pytest
from azure.core.exceptions import HttpResponseError

import deploy
from deploy_cli.commands import SECURE_PLACEHOLDER, dry_run_body
from deploy_cli.load import load_settings
from deploy_cli.settings import SettingsError
from tests.conftest import ROOT, SECURE_VALUE
from tests.test_e2e import calls
from tests.test_e2e import deploy as deploy_to

IMG = "myregistry.azurecr.io/a:1"
SIDECAR = {"ACI_SIDECAR_LOGS_IMAGE": "myregistry.azurecr.io/log-shipper:2.1", "ACI_SIDECAR_LOGS_CPU": "0.5",
           "ACI_SIDECAR_LOGS_MEMORY_GB": "0.5", "ACI_SIDECAR_LOGS_PORTS": "9000"}  # fmt: skip


def body_for(settings):
    config, _ = load_settings(settings, "dry-run")
    return deploy.build_container_group(config).serialize()


def problems_for(settings):
    with pytest.raises(SettingsError) as caught:
        load_settings(settings, "dry-run")
    return caught.value.problems


# The body -------------------------------------------------------------------------------------------
def test_a_one_container_env_gives_the_body_recorded_before_groups_existed():
    recorded = json.loads((ROOT / "tests" / "fixtures" / "one_container_bodies.json").read_text())
    for case in recorded.values():
        assert json.dumps(body_for(case["settings"])) == json.dumps(case["body"])  # byte for byte, key order too


def test_sidecars_follow_the_main_container_and_init_containers_keep_their_order(settings):
    settings.update(
        SIDECAR,
        ACI_SIDECAR_AGENT_IMAGE="mcr.microsoft.com/azuremonitor/agent:1",
        ACI_INIT_IMAGE="myregistry.azurecr.io/first:1",
        ACI_INIT_10_IMAGE="myregistry.azurecr.io/tenth:1",
        ACI_INIT_2_IMAGE="myregistry.azurecr.io/second:1",
    )
    properties = body_for(settings)["properties"]
    assert [c["name"] for c in properties["containers"]] == ["private-app", "agent", "logs"]
    assert [c["name"] for c in properties["initContainers"]] == ["init", "init-2", "init-10"]
    assert [c["properties"]["image"].split("/")[1] for c in properties["initContainers"]] == [
        "first:1", "second:1", "tenth:1"
    ]  # fmt: skip
    logs = properties["containers"][2]["properties"]
    assert logs["resources"] == {"requests": {"cpu": 0.5, "memoryInGB": 0.5}}
    assert "ports" not in properties["containers"][1]["properties"]  # a sidecar opens no port unless asked


def test_the_ip_opens_the_union_of_the_app_containers_ports(settings):
    settings.update(SIDECAR, ACI_PORTS="80,443")
    properties = body_for(settings)["properties"]
    assert [p["port"] for p in properties["ipAddress"]["ports"]] == [80, 443, 9000]


def test_one_registry_credential_per_acr_host_across_every_image(settings):
    settings.update(
        SIDECAR,
        ACI_SIDECAR_LOGS_IMAGE="tools.azurecr.io/log-shipper:2.1",
        ACI_INIT_IMAGE="myregistry.azurecr.io/migrate:1",
        ACI_INIT_2_IMAGE="mcr.microsoft.com/busybox:1",
    )
    credentials = body_for(settings)["properties"]["imageRegistryCredentials"]
    assert [c["server"] for c in credentials] == ["myregistry.azurecr.io", "tools.azurecr.io"]  # mcr needs none


def test_the_shared_directory_is_one_empty_dir_mounted_in_every_container_init_containers_too(settings):
    settings.update(SIDECAR, ACI_SHARED_DIR="/shared", ACI_INIT_IMAGE="myregistry.azurecr.io/prepare:1")
    properties = body_for(settings)["properties"]
    assert properties["volumes"] == [{"name": "shared", "emptyDir": {}}]
    mount = [{"name": "shared", "mountPath": "/shared"}]
    for container in properties["containers"] + properties["initContainers"]:
        assert container["properties"]["volumeMounts"] == mount, container["name"]


def test_secure_values_go_as_secure_value_in_every_kind_of_container(settings):
    settings.update(
        SIDECAR,
        ACI_SIDECAR_LOGS_SECURE_ENV_KEY="sidecar-key-1",
        ACI_INIT_IMAGE=IMG,
        ACI_INIT_SECURE_ENV_TOKEN="init-token-2",
        ACI_INIT_2_IMAGE=IMG,
        ACI_INIT_2_ENV_MODE="plain",
    )
    properties = body_for(settings)["properties"]
    found = {c["name"]: c["properties"]["environmentVariables"] for c in properties["containers"] + properties[
        "initContainers"]}  # fmt: skip
    assert found["private-app"] == [{"name": "DB_PASSWORD", "secureValue": SECURE_VALUE}]
    assert found["logs"] == [{"name": "KEY", "secureValue": "sidecar-key-1"}]
    assert found["init"] == [{"name": "TOKEN", "secureValue": "init-token-2"}]
    assert found["init-2"] == [{"name": "MODE", "value": "plain"}]


def test_a_dry_run_masks_the_secure_values_of_every_container(settings):
    settings.update(
        SIDECAR,
        ACI_SIDECAR_LOGS_SECURE_ENV_KEY="sidecar-key-1",
        ACI_INIT_IMAGE=IMG,
        ACI_INIT_SECURE_ENV_TOKEN="init-token-2",
    )
    config, _ = load_settings(settings, "dry-run")
    text = json.dumps(dry_run_body(config))
    assert not {SECURE_VALUE, "sidecar-key-1", "init-token-2"} & set(re.findall(r'"secureValue": "([^"]*)"', text))
    assert text.count(SECURE_PLACEHOLDER) == 3


# The checks before sending ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"ACI_SIDECAR_LOGS_CPU": "1"}, "ACI_SIDECAR_LOGS_CPU set without ACI_SIDECAR_LOGS_IMAGE; for example"),
        ({"ACI_INIT_3_COMMAND": "x"}, "ACI_INIT_3_COMMAND set without ACI_INIT_3_IMAGE"),
        (
            {"ACI_SIDECAR_LOG-SHIP_IMAGE": IMG},
            "the sidecar name 'LOG-SHIP' must be 1-63 letters",
        ),
        (
            {"ACI_SIDECAR_LOG_SHIP_IMAGE": IMG},
            "the sidecar name 'LOG_SHIP' must be 1-63 letters",
        ),
        (
            {"ACI_SIDECAR_PRIVATEAPP_IMAGE": IMG, "ACI_CONTAINER_GROUP_NAME": "privateapp"},
            "ACI_SIDECAR_PRIVATEAPP_IMAGE: the sidecar 'privateapp' has the name of the main container",
        ),
        (
            {"ACI_SIDECAR_INIT_IMAGE": IMG, "ACI_INIT_IMAGE": IMG},
            "ACI_SIDECAR_INIT_IMAGE: the sidecar 'init' has the name of init container init",
        ),
        ({**SIDECAR, "ACI_SIDECAR_LOGS_PORTS": "80"}, "ACI_SIDECAR_LOGS_PORTS: port 80 is opened by ACI_PORTS too"),
        (
            {**SIDECAR, "ACI_PORTS": "80,81,82", "ACI_SIDECAR_LOGS_PORTS": "83,84,85"},
            "ACI_PORTS, ACI_SIDECAR_LOGS_PORTS: the group's IP opens every app container's ports, at most 5 in all (6",
        ),
        (
            {"ACI_INIT_IMAGE": IMG, "ACI_INIT_CPU": "1"},
            "ACI_INIT_CPU is set, but init containers",
        ),
        (
            {"ACI_INIT_2_IMAGE": IMG, "ACI_INIT_2_PORTS": "80"},
            "ACI_INIT_2_PORTS is set, but init",
        ),
        ({"ACI_INIT_IMAGE": IMG, "ACI_INIT_MEMORY_GB": "1"}, "take no memory"),
        ({"ACI_SHARED_DIR": "shared"}, "ACI_SHARED_DIR='shared' is not an absolute path"),
        ({"ACI_SHARED_DIR": "/mnt/c:/data"}, "without a colon"),
        (
            {"ACI_MEMORY_GB": "1536"},
            "ACI_MEMORY_GB: 1536 GB (memory is in GB, not MB) in all is above ACI's maximum",
        ),
        ({**SIDECAR, "ACI_CPU": "31"}, "ACI_CPU, ACI_SIDECAR_LOGS_CPU: 31.5 in all is above ACI's maximum of 31"),
        ({"ACI_INIT_1_IMAGE": IMG}, "numbered init containers start at 2"),
        ({"ACI_INIT_IMAGE": "tools.azurecr.io/a:1"}, "the images come from 2 registries"),
        ({"ACI_SIDECAR_LOGS_IMAGE": "nginx"}, "ACI_SIDECAR_LOGS_IMAGE='nginx' is not a fully qualified image"),
    ],
    ids=lambda value: "" if isinstance(value, dict) else value.split(":")[0][:40],
)
def test_each_group_rule_is_a_settings_error_naming_its_variable(settings, changes, expected):
    settings.update(changes)
    assert any(expected in problem for problem in problems_for(settings)), problems_for(settings)


def test_every_group_problem_is_reported_at_once(settings):
    settings.update(
        ACI_SIDECAR_LOGS_CPU="1",
        ACI_INIT_CPU="1",
        ACI_INIT_IMAGE=IMG,
        ACI_SHARED_DIR="rel",
        ACI_MEMORY_GB="1536",
    )
    assert len(problems_for(settings)) == 4


def test_a_group_above_the_capacity_size_is_a_warning_not_an_error(settings):
    settings.update(SIDECAR, ACI_CPU="4")
    _, warnings = load_settings(settings, "dry-run")
    assert warnings == ["ACI_CPU, ACI_SIDECAR_LOGS_CPU: 4.5 in all; groups above 4 CPU or 16 GB may fail for lack "
                        "of capacity in the region"]  # fmt: skip


def test_a_typo_in_a_sidecar_or_init_suffix_is_warned_about_with_the_closest_name(settings):
    settings.update(SIDECAR, ACI_SIDECAR_LOGS_MEMORY="1", ACI_INIT_2_IMGAE="x", ACI_SIDECAR_LOGS_ENV_OK="1")
    _, warnings = load_settings(settings, "dry-run")
    assert warnings == [
        "ACI_INIT_2_IMGAE is not a setting deploy.py reads, so it is ignored; did you mean ACI_INIT_2_IMAGE?",
        "ACI_SIDECAR_LOGS_MEMORY is not a setting deploy.py reads, so it is ignored; did you mean "
        "ACI_SIDECAR_LOGS_MEMORY_GB?",
    ]


# The emulator's rules, as ACI answers them (sent by the sample half alone, which checks nothing) -------
def refusal(emulator, monkeypatch, **changes) -> HttpResponseError:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(emulator.ca_path))
    settings, _ = load_settings(emulator.settings())
    settings = dataclasses.replace(settings, **changes)
    with pytest.raises(HttpResponseError) as refused:
        deploy.create_or_update(
            deploy.create_client(settings, deploy.create_credential(settings)), settings, timeout=10
        )
    return refused.value


def app(name, image="acrprivatedemo.azurecr.io/app:1", **fields):
    return deploy.ContainerSettings(name=name, image=image, **fields)


MAIN = app("aci-private-demo", ports=(80,))
OTHER_REGISTRY = app("init", image="other.azurecr.io/init:1")


@pytest.mark.parametrize(
    "containers, inits, code",
    [
        ((MAIN, app("proxy", ports=(80,))), (), "DuplicateContainerPorts"),
        ((MAIN, app("aci-private-demo")), (), "DuplicateContainerNames"),
        ((MAIN,), (OTHER_REGISTRY,), "MoreImageRegistryCredentialsThanContainers"),  # init containers do not count
    ],
)
def test_the_emulator_refuses_what_aci_refuses_for_groups(emulator, monkeypatch, containers, inits, code):
    assert refusal(emulator, monkeypatch, containers=containers, init_containers=inits).error.code == code


def test_the_emulator_refuses_ports_no_container_opens_and_init_containers_with_ports():
    from tests.emulator.aci import check_network, check_shape

    base = {"osType": "Linux", "subnetIds": [{"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/"
                                              "virtualNetworks/v/subnets/s"}]}  # fmt: skip
    container = {"name": "app", "properties": {"image": "a.azurecr.io/a:1", "ports": [{"port": 80}],
                                               "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}}}  # fmt: skip
    unreferenced = {**base, "containers": [container], "ipAddress": {"type": "Private", "ports": [{"port": 443}]}}
    assert check_network("g1", unreferenced)[0] == "UnreferencedIpAddressPorts"
    init = {"name": "init", "properties": {"image": "a.azurecr.io/i:1", "ports": [{"port": 81}]}}
    assert check_shape("g1", {**base, "containers": [container], "initContainers": [init]})[0] == (
        "InvalidInitContainerProperties"
    )


# End to end -----------------------------------------------------------------------------------------
def readme_example() -> dict[str, str]:
    """The group of containers the README shows, from its example block."""
    block = (
        (ROOT / "docs" / "containers.md")
        .read_text()
        .split("## A group of containers\n", 1)[1]
        .split("```dotenv\n", 1)[1]
    )
    return dict(line.split("=", 1) for line in block.split("```", 1)[0].splitlines() if "=" in line)


def test_the_readme_example_deploys_and_lists_every_container(emulator, tmp_path):
    result = deploy_to(emulator, tmp_path, **readme_example())
    assert result.returncode == 0, result.stderr
    for line in ("container aci-private-demo: Running", "container logs: Running", "init container init: Terminated,",
                 "init container init-2: Terminated, exit code 0"):  # fmt: skip
        assert line in result.stdout
    put = next(record for record in emulator.requests if record.method == "PUT")
    assert [c["name"] for c in put.body["properties"]["initContainers"]] == ["init", "init-2"]
    assert put.body["properties"]["volumes"] == [{"name": "shared", "emptyDir": {}}]


def test_a_sidecar_that_crash_loops_while_the_app_runs_fails_the_run_with_its_own_log(emulator, tmp_path):
    emulator.container_outcomes["logs"] = "Crashing"
    result = deploy_to(emulator, tmp_path, **{**SIDECAR, "ACI_SIDECAR_LOGS_IMAGE": "acrprivatedemo.azurecr.io/logs:1"})
    assert result.returncode == 1
    assert "container aci-private-demo: Running" in result.stdout and "container logs: Waiting" in result.stdout
    assert "error: provisioning succeeded, but container logs is Waiting (CrashLoopBackOff" in result.stderr
    assert "  | logs: fatal: could not connect" in result.stderr and "aci-private-demo is" not in result.stderr
    logs = [record.path for record in emulator.requests if record.path.endswith("/logs")]
    assert logs == [f"/subscriptions/{emulator.subscription_id}/resourceGroups/rg-aci-private/providers/"
                    "Microsoft.ContainerInstance/containerGroups/aci-private-demo/containers/logs/logs"]  # fmt: skip


def test_a_refused_update_names_the_changed_setting_of_each_container(emulator, tmp_path):
    sidecar = {**SIDECAR, "ACI_SIDECAR_LOGS_IMAGE": "acrprivatedemo.azurecr.io/logs:1"}
    assert deploy_to(emulator, tmp_path, **sidecar).returncode == 0
    result = deploy_to(emulator, tmp_path, **{**sidecar, "ACI_SIDECAR_LOGS_CPU": "1"})
    assert result.returncode == 1
    assert "  ACI_SIDECAR_LOGS_CPU: 0.5 -> 1\n" in result.stderr and "ACI_CPU:" not in result.stderr
    assert calls(emulator)[-1] == ("GET", "group") and [c for c in calls(emulator) if c[0] == "PUT"] == [
        ("PUT", "group")
    ]
