"""The settings loader: every bad input is reported with its variable and a valid value, all at once."""

import re

import pytest

from deploy_cli import load, values
from deploy_cli import settings as table
from tests.conftest import CLIENT_SECRET, SECURE_VALUE, SUBNET_ID, SUBSCRIPTION

EXAMPLES = table.EXAMPLES


def problems_for(settings, mode="deploy"):
    with pytest.raises(table.SettingsError) as caught:
        load.load_settings(settings, mode)
    return caught.value.problems


def test_valid_settings_load_with_defaults(settings):
    config, warnings = load.load_settings(settings)
    [app] = config.containers
    assert (app.cpu, app.memory_in_gb, app.ports, config.restart_policy) == (1.0, 1.5, (80,), "Always")
    assert app.name == "private-app" and config.init_containers == () and config.shared_dir == ""
    assert app.secure_environment == {"DB_PASSWORD": SECURE_VALUE}
    assert config.authority_host == "https://login.microsoftonline.com" and config.sign_in == "client_secret"
    assert warnings == []


@pytest.mark.parametrize(
    "variable",
    ["AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "AZURE_LOCATION", "ACI_CONTAINER_GROUP_NAME",
     "ACI_SUBNET_ID", "ACI_IDENTITY_ID", "ACI_IMAGE", "AZURE_TENANT_ID", "AZURE_CLIENT_ID"],
)  # fmt: skip
@pytest.mark.parametrize("absent", [None, "", "   "])
def test_missing_or_empty_required_setting_is_named_with_an_example(settings, variable, absent):
    if absent is None:
        del settings[variable]
    else:
        settings[variable] = absent
    [problem] = problems_for(settings)
    assert problem.startswith(f"{variable} is not set; for example {variable}={EXAMPLES[variable]}")


def test_a_client_id_with_nothing_to_sign_in_with_names_every_way_and_never_falls_back_to_az(settings):
    del settings["AZURE_CLIENT_SECRET"]  # a forgotten secret must not deploy as whoever az is signed in as
    [problem] = problems_for(settings)
    for named in ("AZURE_FEDERATED_TOKEN_FILE", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_CLIENT_SECRET",
                  "AZURE_TOKEN_CREDENTIALS=ManagedIdentityCredential", "unset AZURE_CLIENT_ID"):  # fmt: skip
        assert named in problem


def test_quotes_and_whitespace_pasted_around_values_are_removed(settings):
    settings["ACI_SUBNET_ID"] = f"  '{settings['ACI_SUBNET_ID']}'\r"
    settings["ACI_IDENTITY_ID"] = f'"{settings["ACI_IDENTITY_ID"]}"'
    settings["AZURE_SUBSCRIPTION_ID"] = f" {SUBSCRIPTION}\n"
    config, _ = load.load_settings(settings)
    assert config.subnet_id.startswith("/subscriptions/") and config.subnet_id.endswith("/subnets/aci")
    assert config.identity_id.endswith("/userAssignedIdentities/id-pull")
    assert config.subscription_id == SUBSCRIPTION


VNET_ID = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet"
BAD_VALUES = [
    ("ACI_SUBNET_ID", VNET_ID, "subnets resource ID"),
    ("ACI_SUBNET_ID", f"/subscriptions/{SUBSCRIPTION}", "subnets resource ID"),
    ("ACI_SUBNET_ID", "snet-aci", "subnets resource ID"),
    ("ACI_SUBNET_ID", VNET_ID + "/subnets/aci/ipConfigurations/x", "subnets resource ID"),
    ("ACI_SUBNET_ID", VNET_ID.replace("Microsoft.Network", "Microsoft.Fake") + "/subnets/aci", "subnets resource ID"),
    ("ACI_IDENTITY_ID", VNET_ID + "/subnets/aci", "userAssignedIdentities resource ID"),
    ("ACI_IDENTITY_ID", f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg", "userAssignedIdentities resource ID"),
    ("ACI_CONTAINER_GROUP_NAME", "My_App", "valid container group name"),
    ("ACI_CONTAINER_GROUP_NAME", "-app", "valid container group name"),
    ("ACI_CONTAINER_GROUP_NAME", "app-", "valid container group name"),
    ("ACI_CONTAINER_GROUP_NAME", "my--app", "valid container group name"),
    ("ACI_CONTAINER_GROUP_NAME", "a" * 64, "valid container group name"),
    ("ACI_IMAGE", "app:1.0", "fully qualified image"),
    ("ACI_IMAGE", "library/nginx", "fully qualified image"),
    ("ACI_IMAGE", "myregistry.azurecr.io/App:1.0", "repositories are lowercase"),
    ("ACI_IDENTITY_ID", "SystemAssigned", "a system-assigned identity cannot pull"),
    ("ACI_IDENTITY_ID", "5e1f7c2a-0000-4000-8000-0000000000a1", "a client or principal ID is not it"),
    (
        "ACI_SUBNET_ID",
        "https://portal.azure.com/#@contoso.onmicrosoft.com/resource" + VNET_ID + "/subnets/aci/overview",
        "this is a portal URL: use the part from /subscriptions/",
    ),
    ("ACI_CONTAINER_GROUP_NAME", "a" * 64, "1-63 lowercase letters, digits and single hyphens"),
    ("ACI_IMAGE", "myregistry.azurecr.io/app:", "fully qualified image"),
    ("ACI_IMAGE", "myregistry.azurecr.io/app:1.0 extra", "fully qualified image"),
    ("ACI_IMAGE", "docker.io/library/nginx:1.27", "Azure Container Registry"),
    ("ACI_INIT_IMAGE", "busybox", "fully qualified image"),
    ("ACI_CPU", "two", "positive number"),
    ("ACI_CPU", "0", "positive number"),
    ("ACI_CPU", "-1", "positive number"),
    ("ACI_CPU", "nan", "positive number"),
    ("ACI_MEMORY_GB", "1.5GB", "positive number"),
    ("ACI_MEMORY_GB", "inf", "positive number"),
    ("ACI_PORTS", "0", "ports from 1 to 65535"),
    ("ACI_PORTS", "80,65536", "ports from 1 to 65535"),
    ("ACI_PORTS", "http", "ports from 1 to 65535"),
    ("ACI_RESTART_POLICY", "Sometimes", "restart policy"),
    ("ACI_DNS_SERVERS", "10.0.0.4,dns.local", "IP addresses"),
    ("ACI_COMMAND", 'sh -c "echo', "shell command line"),
    ("ACI_ENV_MY-VAR", "1", "valid environment variable name"),
    ("ACI_SECURE_ENV_1ST", "1", "valid environment variable name"),
    ("AZURE_AUTHORITY_HOST", "http://login.example.test", "https:// URL"),
    ("AZURE_RESOURCE_MANAGER_ENDPOINT", "management.azure.com", "https:// URL"),
    ("AZURE_SUBSCRIPTION_ID", "my-subscription", "subscription ID"),
    ("AZURE_CLIENT_ID", "my-app", "application (client) ID"),
    ("AZURE_RESOURCE_GROUP", "rg with spaces", "resource group name"),
    ("AZURE_LOCATION", "west-europe", "region name"),
]


@pytest.mark.parametrize("variable, value, expected", BAD_VALUES)
def test_bad_value_is_reported_with_variable_and_a_valid_example(settings, variable, value, expected):
    settings[variable] = value
    problems = [problem for problem in problems_for(settings) if problem.startswith(variable)]
    assert len(problems) == 1, problems
    assert expected in problems[0]
    assert "for example" in problems[0] or "e.g." in problems[0]


def test_subnet_in_another_subscription_is_rejected_without_echoing_either_id(settings):
    other = "00000000-0000-0000-0000-000000000001"
    settings["ACI_SUBNET_ID"] = settings["ACI_SUBNET_ID"].replace(SUBSCRIPTION, other)
    [problem] = problems_for(settings)
    assert problem.startswith("ACI_SUBNET_ID is in another subscription than AZURE_SUBSCRIPTION_ID")
    assert other not in problem and SUBSCRIPTION not in problem


def test_unreadable_certificate_is_reported(settings, tmp_path):
    del settings["AZURE_CLIENT_SECRET"]
    settings["AZURE_CLIENT_CERTIFICATE_PATH"] = str(tmp_path / "missing.pem")
    [problem] = problems_for(settings)
    assert problem.startswith(f"AZURE_CLIENT_CERTIFICATE_PATH='{tmp_path / 'missing.pem'}' is not a readable file")
    assert "~ is not expanded" in problem  # a path is not a secret: it is shown, with what often goes wrong


def test_every_problem_is_reported_at_once(settings):
    settings.update(ACI_CPU="x", ACI_PORTS="99999", ACI_IMAGE="nginx", ACI_RESTART_POLICY="sometimes")
    del settings["ACI_SUBNET_ID"]
    problems = problems_for(settings)
    assert [p.split()[0].split("=")[0] for p in problems] == [
        "ACI_SUBNET_ID", "ACI_RESTART_POLICY", "ACI_IMAGE", "ACI_CPU", "ACI_PORTS"
    ]  # fmt: skip


def test_dry_run_needs_no_credentials_and_delete_needs_no_deploy_settings(settings):
    for name in ("AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"):
        del settings[name]
    load.load_settings(settings, "dry-run")
    delete_only = {
        k: settings[k] for k in ("AZURE_SUBSCRIPTION_ID", "AZURE_RESOURCE_GROUP", "ACI_CONTAINER_GROUP_NAME")
    }
    assert load.load_settings(delete_only, "delete")[0].sign_in == "azure_cli"  # no credentials: az's account
    delete_only.update(AZURE_CLIENT_SECRET="x")
    assert len(problems_for(delete_only, "delete")) == 2  # the secret's tenant and client
    delete_only.update(AZURE_TENANT_ID="contoso.onmicrosoft.com", AZURE_CLIENT_ID=SUBSCRIPTION)
    assert load.load_settings(delete_only, "delete")[0].sign_in == "client_secret"


def test_optional_settings_are_parsed(settings):
    settings.update(
        ACI_CPU="0.5", ACI_MEMORY_GB="2", ACI_PORTS="80, 443,80", ACI_RESTART_POLICY="onfailure",
        ACI_COMMAND="python -c 'print(1)'", ACI_DNS_SERVERS="10.0.0.4, 168.63.129.16", ACI_ENV_MODE="prod",
        AZURE_LOCATION="West Europe",
    )  # fmt: skip
    config, _ = load.load_settings(settings)
    [app] = config.containers
    assert (app.cpu, app.memory_in_gb, app.ports) == (0.5, 2.0, (80, 443))
    assert config.restart_policy == "OnFailure" and config.location == "westeurope"
    assert app.command == ("python", "-c", "print(1)")
    assert config.dns_servers == ("10.0.0.4", "168.63.129.16")
    assert app.environment == {"MODE": "prod"}


def test_unknown_aci_setting_warns_with_the_closest_known_name(settings):
    settings.update(ACI_MEMORY="2", ACI_IMGAE="x", ACI_ENV_OK="1", AZURE_SOMETHING_ELSE="not ours")
    _, warnings = load.load_settings(settings)
    assert warnings == [
        "ACI_IMGAE is not a setting deploy.py reads, so it is ignored; did you mean ACI_IMAGE?",
        "ACI_MEMORY is not a setting deploy.py reads, so it is ignored; did you mean ACI_MEMORY_GB?",
    ]


def test_secrets_never_appear_in_the_config_repr(settings, tmp_path):
    settings["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = "cert-pass-4321"
    text = repr(load.load_settings(settings)[0])
    assert "DB_PASSWORD" not in text
    for secret in (CLIENT_SECRET, SECURE_VALUE, "cert-pass-4321"):
        assert secret not in text
    settings["ACI_CPU"] = "bad"
    assert not any(secret in "\n".join(problems_for(settings)) for secret in (CLIENT_SECRET, SECURE_VALUE))


@pytest.mark.parametrize("variable", [s.name for s in table.SETTINGS if s.hidden and s.check is not str])
def test_a_secret_pasted_into_a_credential_or_id_setting_is_described_never_echoed(settings, variable):
    settings[variable] = CLIENT_SECRET  # the client secret, pasted into the wrong line
    [problem] = problems_for(settings)
    assert CLIENT_SECRET not in problem and "s3cr3t" not in problem
    assert problem.startswith(f"{variable} (value not shown: it looks like a token or a secret) is not ")
    assert f"for example {variable}={EXAMPLES[variable]}" in problem


def test_every_example_passes_its_own_check_and_matches_env_example():
    from tests.conftest import ROOT

    shipped = dict(line.lstrip("# ").split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if re.match(r"#? ?[A-Z][A-Z0-9_]+=\S", line))  # fmt: skip
    for setting in table.SETTINGS:
        if setting.check not in (values.readable_file, values.token_file):  # those read the file named
            setting.check(setting.example)
        if setting.name in shipped:
            assert shipped[setting.name] == setting.example, setting.name


@pytest.mark.parametrize("ports", ["80,81,82,83,84,85", "1,2,3,4,5,6,7"])
def test_more_than_five_ports_is_a_settings_error(settings, ports):
    settings["ACI_PORTS"] = ports
    [problem] = problems_for(settings)
    assert problem.startswith("ACI_PORTS=") and "at most 5 ports" in problem


def test_a_reserved_port_is_a_warning_that_names_it_and_the_risk(settings):
    settings["ACI_PORTS"] = "80,19390"
    config, warnings = load.load_settings(settings)
    assert config.containers[0].ports == (80, 19390)
    assert warnings == ["ACI_PORTS: port 19390 is on ACI's list of reserved ports; groups that use it can stay Waiting"]


def test_a_trailing_slash_on_a_resource_id_is_not_sent(settings):
    settings["ACI_SUBNET_ID"] += "/"
    config, _ = load.load_settings(settings)
    assert config.subnet_id == SUBNET_ID


@pytest.mark.parametrize("variable", ["AZURE_RESOURCE_GROUP", "ACI_CONTAINER_GROUP_NAME", "ACI_IMAGE", "AZURE_LOCATION",
                                      "ACI_CPU", "ACI_SIDECAR_LOGS_IMAGE"])  # fmt: skip
@pytest.mark.parametrize(
    "pasted", [CLIENT_SECRET, "Abc8Q~x1y2z3w4v5u6t7s8r9q0p1o2n3m4l5k6j7i8", "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"]
)
def test_a_secret_or_token_pasted_into_any_setting_is_never_echoed(settings, variable, pasted):
    settings[variable] = pasted
    problems = "\n".join(problems_for(settings))
    assert pasted not in problems and "value not shown" in problems
