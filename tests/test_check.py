"""deploy.py --check end to end: the real azure-identity and azure-core over HTTPS to the emulator, whose
subnet, network, identity, registry, role assignments and provider each test breaks in one way."""

import re

import pytest

from tests.conftest import ROOT
from tests.emulator.authorization import ACR_PULL, REPOSITORY_READER
from tests.emulator.network import delegation
from tests.emulator.worlds import abac_mode, no_delegation, no_trusted_services, vnet_elsewhere
from tests.emulator.worlds import no_pull_role as no_role
from tests.test_e2e import calls, deploy, typed

CUSTOM_PULL = "0c0ffee0-0000-4000-8000-0000000c0570"


def check(emulator, tmp_path, *flags, **changes):
    result = deploy(emulator, tmp_path, "--check", *flags, **changes)
    lines = {line.split(":", 1)[0].split(None, 1)[1]: line for line in result.stdout.splitlines() if ":" in line
             and not line.startswith(" ")}  # fmt: skip
    return result, lines


def test_everything_in_order_is_every_check_ok_with_get_requests_only(emulator, tmp_path):
    result, lines = check(emulator, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert list(lines) == ["subnet snet-aci", "virtual network vnet-aci", "identity id-aci-acrpull",
                           "registry acrprivatedemo.azurecr.io", "pull role on acrprivatedemo.azurecr.io",
                           "container group aci-private-demo", "provider Microsoft.ContainerInstance"]  # fmt: skip
    assert all(line.startswith("ok ") for line in lines.values()), result.stdout
    assert result.stdout.splitlines()[-1] == "7 ok, 0 warnings, 0 problems, 0 skipped"
    methods = {method for method, what in calls(emulator) if what not in ("openid", "token")}
    assert methods == {"GET"} and [c for c in calls(emulator) if c[0] == "POST"] == [("POST", "token")]
    assert not any(r.path.endswith("/register") for r in emulator.requests)


def second_delegation(emulator):
    emulator.subnet_properties["delegations"].append(delegation(emulator.subnet_id, "Microsoft.Web/serverFarms", "web"))


def private_endpoint(emulator):
    emulator.subnet_properties["privateEndpoints"] = [{"id": "/subscriptions/x/privateEndpoints/pe-acr"}]


def small_subnet(emulator):
    emulator.subnet_properties["addressPrefix"] = "10.0.0.0/29"


def no_nat(emulator):
    del emulator.subnet_properties["natGateway"]


def regional_identity(emulator):
    emulator.identity.update(location="northeurope", isolationScope="Regional")


def no_identity(emulator):
    emulator.identities.clear()


def basic_registry(emulator):
    emulator.registry["sku"] = "Basic"


def fresh_role(emulator):
    no_role(emulator)
    emulator.assign(REPOSITORY_READER, emulator.identity["principalId"], emulator.registry_id(emulator.registry), 4)
    emulator.registry["mode"] = "AbacRepositoryPermissions"


def unregistered(emulator):
    emulator.provider_state = "NotRegistered"


def other_registry(emulator):
    emulator.registry["name"] = "acrsomewhereelse"


@pytest.mark.parametrize(
    "breaks, label, verdict, text, fix",
    [
        (no_delegation, "subnet", "problem", "is not delegated to container groups",
         "az network vnet subnet update --ids {subnet} --delegations Microsoft.ContainerInstance/containerGroups"),
        (second_delegation, "subnet", "problem", "is delegated to Microsoft.Web/serverFarms too", "--delegations"),
        (private_endpoint, "subnet", "problem", "holds 1 private endpoints", "az network vnet subnet create"),
        (small_subnet, "subnet", "warning", "is a /29", None),
        (no_nat, "subnet", "warning", "has no NAT gateway", None),
        (vnet_elsewhere, "virtual network", "problem", "is in northeurope, but AZURE_LOCATION is westeurope",
         "set AZURE_LOCATION=northeurope"),
        (regional_identity, "identity", "problem", "has isolation scope Regional in northeurope", "use an identity"),
        (no_identity, "identity", "problem", "does not exist",
         "az identity create -g rg-aci-private -n id-aci-acrpull -l westeurope"),
        (no_trusted_services, "registry", "problem", "does not let trusted Microsoft services in",
         "az acr update --name acrprivatedemo --allow-trusted-services true"),
        (basic_registry, "registry", "warning", "is Basic", "--sku Premium"),
        (other_registry, "registry", "skipped", "not found in resource group rg-aci-private nor in the subscription",
         None),
        (no_role, "pull role", "problem", "has no role that pulls from acrprivatedemo in classic mode",
         'az role assignment create --assignee-object-id {principal} --assignee-principal-type ServicePrincipal '
         '--role "AcrPull" --scope {registry}'),
        (abac_mode, "pull role", "problem", "in ABAC (repository permissions) mode (AcrPull is assigned, but ABAC mode "
         "ignores it)", '--role "Container Registry Repository Reader"'),
        (fresh_role, "pull role", "warning", "Container Registry Repository Reader was assigned 4 minutes ago", None),
        (unregistered, "provider", "problem", "is NotRegistered",
         "az provider register --namespace Microsoft.ContainerInstance"),
    ],
)  # fmt: skip
def test_each_broken_property_is_found_with_its_fix(emulator, tmp_path, breaks, label, verdict, text, fix):
    breaks(emulator)
    result, lines = check(emulator, tmp_path)
    line = next(line for name, line in lines.items() if name.startswith(label))
    assert line.startswith(f"{verdict} ") and text in line, result.stdout
    assert result.returncode == (1 if verdict == "problem" else 0), result.stdout + result.stderr
    # What needs the broken read is skipped: the pull role needs the identity and the registry.
    needs = {"identity": "pull role", "registry": "pull role", "provider": "container group"}.get(label, label)
    others = [other for name, other in lines.items() if other != line and not name.startswith(needs)]
    assert all(other.startswith("ok ") for other in others), result.stdout
    registry = emulator.registry_id(emulator.registry)
    after = result.stdout.split(line, 1)[1].splitlines()[1:2]
    if fix:
        wanted = fix.format(subnet=emulator.subnet_id, principal=emulator.identity["principalId"], registry=registry)
        assert after and after[0].strip().startswith("fix: ") and wanted in after[0], result.stdout
    else:
        assert not after or not after[0].strip().startswith("fix:"), result.stdout


READ_PATHS = [
    ("subnet", r"/subnets/snet-aci$", "Reader on virtual network vnet-aci"),
    ("virtual network", r"/virtualNetworks/vnet-aci$", "Reader on virtual network vnet-aci"),
    ("identity", r"/userAssignedIdentities/", "Reader (or Managed Identity Operator) on identity id-aci-acrpull"),
    ("pull role", r"/roleAssignments$", "Reader on the registry"),
    ("container group", r"/containerGroups/", "Reader on resource group rg-aci-private"),
    ("provider", r"/providers/Microsoft.ContainerInstance$", "Reader on the subscription"),
]


@pytest.mark.parametrize("label, path, role", READ_PATHS)
def test_a_read_answered_403_is_skipped_naming_the_read_only_role(emulator, tmp_path, label, path, role):
    message = ("The client 'x' with object id 'x' does not have authorization to perform action "
               "'Microsoft.Example/things/read' over scope '/subscriptions/x' or the scope is invalid.")  # fmt: skip
    emulator.add_fault("GET", path, status=403, code="AuthorizationFailed", message=message)
    result, lines = check(emulator, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for name, line in lines.items() if name.startswith(label))
    assert line.startswith("skipped ") and "403 AuthorizationFailed" in line and role in line, result.stdout
    assert line.endswith(f"{role}, or a custom role with Microsoft.Example/things/read"), line


def test_a_registry_list_answered_403_and_a_5xx_after_retries_are_skipped_with_the_reason(emulator, tmp_path):
    emulator.add_fault("GET", r"/registries$", status=403, code="AuthorizationFailed", times=2)
    emulator.add_fault(
        "GET", r"/providers/Microsoft.ContainerInstance$", status=503, code="ServiceUnavailable", times=3
    )
    result, lines = check(emulator, tmp_path)
    assert result.returncode == 0, result.stdout
    assert (
        lines["registry acrprivatedemo.azurecr.io"].startswith("skipped ")
        and "az acr show --name acrprivatedemo" in (lines["registry acrprivatedemo.azurecr.io"])
    )
    registry_line = lines["registry acrprivatedemo.azurecr.io"]
    assert "not allowed to list the registries of resource group rg-aci-private" in registry_line
    assert "Reader on the registry's resource group or the subscription" in registry_line and "not found" not in (
        registry_line
    )
    role_line = lines["pull role on acrprivatedemo.azurecr.io"]  # the identity was read: only the registry is named
    assert role_line.startswith("skipped ") and "needs the registry, which could not be read" in role_line
    assert lines["provider Microsoft.ContainerInstance"].startswith("skipped  provider Microsoft.ContainerInstance: "
                                                                   "503 ServiceUnavailable")  # fmt: skip


def test_an_api_version_the_cloud_lacks_is_retried_with_the_older_one(emulator, tmp_path):
    emulator.add_fault("GET", r"/userAssignedIdentities/", status=400, code="NoRegisteredProviderFound")
    result, lines = check(emulator, tmp_path)
    assert lines["identity id-aci-acrpull"].startswith("ok "), result.stdout
    versions = [r.query["api-version"][0] for r in emulator.requests if "/userAssignedIdentities/" in r.path]
    assert versions == ["2024-11-30", "2023-01-31"]


def test_registries_are_found_on_later_pages_and_in_the_subscription(emulator, tmp_path):
    for n in range(3):  # the group's list has two pages before this registry, then it is elsewhere
        emulator.registries.insert(0, {**emulator.registry, "name": f"acrother{n}"})
    emulator.registry["resource_group"] = "rg-shared"
    result, lines = check(emulator, tmp_path)
    assert lines["registry acrprivatedemo.azurecr.io"].startswith("ok "), result.stdout
    assert sum("$skipToken" in r.query for r in emulator.requests) >= 1


def test_a_custom_role_that_allows_pulls_counts_and_one_that_does_not_is_no_pull_role(emulator, tmp_path):
    no_role(emulator)
    emulator.assign(CUSTOM_PULL, emulator.identity["principalId"], f"/subscriptions/{emulator.subscription_id}")
    emulator.role_definitions[CUSTOM_PULL] = {"roleName": "acr-puller", "type": "CustomRole", "permissions": [
        {"actions": ["Microsoft.ContainerRegistry/registries/*/read"], "notActions": [], "dataActions": [],
         "notDataActions": []}]}  # fmt: skip
    result, lines = check(emulator, tmp_path)
    assert lines["pull role on acrprivatedemo.azurecr.io"] == "ok       pull role on acrprivatedemo.azurecr.io: the " \
        "identity has acr-puller", result.stdout  # fmt: skip
    emulator.role_definitions[CUSTOM_PULL]["permissions"][0]["notActions"] = ["Microsoft.ContainerRegistry/*/pull/read"]
    result, lines = check(emulator, tmp_path)
    assert lines["pull role on acrprivatedemo.azurecr.io"].startswith("problem "), result.stdout


def test_a_live_group_with_settings_azure_cannot_change_is_a_warning_naming_them_and_recreate(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    result, lines = check(emulator, tmp_path, ACI_CPU="2")
    line = lines["container group aci-private-demo"]
    assert line.startswith("warning ") and "ACI_CPU: 1 -> 2" in line, result.stdout
    assert f"fix: {typed(tmp_path, '--recreate')}" in result.stdout
    assert "subnet snet-aci: delegated" in result.stdout  # the group's link is ACI's own: nothing else in it
    result, lines = check(emulator, tmp_path)
    assert "exists (provisioning Succeeded, state Running)" in lines["container group aci-private-demo"]


def test_check_exit_codes_for_settings_and_sign_in(emulator, tmp_path):
    result = deploy(emulator, tmp_path, "--check", ACI_SUBNET_ID="not-an-id")
    assert result.returncode == 2 and not emulator.requests
    result = deploy(emulator, tmp_path, "--check", AZURE_CLIENT_SECRET="wrong-secret-value")
    assert result.returncode == 3 and "AADSTS7000215" in result.stderr
    assert [c for c in calls(emulator) if c[1] not in ("openid", "token")] == []


def test_a_put_refused_for_a_missing_pull_role_names_that_cause_and_its_fix(emulator, tmp_path):
    no_role(emulator)
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1
    error = result.stderr.index("error: InaccessibleImage:")
    found = result.stderr.index("problem  pull role on acrprivatedemo.azurecr.io: the identity")
    assert error < found, result.stderr
    assert "fix: az role assignment create --assignee-object-id " + emulator.identity["principalId"] in result.stderr
    # One sign-in per run: the reads after the failure use the token the deploy got.
    assert [c for c in calls(emulator) if c[0] != "GET"] == [("POST", "token"), ("PUT", "group")]


def test_a_put_refused_for_the_subnet_delegation_reads_the_subnet_and_network(emulator, tmp_path):
    no_delegation(emulator)
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1 and "error: SubnetMissingRequiredDelegation:" in result.stderr
    assert "problem  subnet snet-aci: is not delegated to container groups" in result.stderr
    assert {what for _, what in calls(emulator)} == {"openid", "token", "group", "subnet", "network"}


def test_a_group_waiting_at_the_timeout_reads_the_subnet_and_network(emulator, tmp_path):
    emulator.delay = 30
    result = deploy(emulator, tmp_path, "--timeout", "6")  # after the first progress read (5 s) shows it waiting
    assert result.returncode == 4, result.stderr
    assert re.search(r"ok +subnet snet-aci: delegated", result.stderr), result.stderr
    assert result.stderr.index("gave up waiting") < result.stderr.index("subnet snet-aci")


def test_recreate_stops_before_deleting_when_a_check_finds_a_problem(emulator, tmp_path):
    assert deploy(emulator, tmp_path).returncode == 0
    no_trusted_services(emulator)
    emulator.requests.clear()
    result = deploy(emulator, tmp_path, "--recreate", ACI_CPU="2")
    assert result.returncode == 1
    assert "problem  registry acrprivatedemo.azurecr.io" in result.stderr
    assert "nothing was changed" in result.stderr
    assert {method for method, _ in calls(emulator)} == {"GET", "POST"} and emulator.groups


def test_the_readme_shows_what_check_prints_against_the_emulator(emulator, tmp_path):
    readme = (ROOT / "README.md").read_text()
    shown = readme.split("Against the emulator, with everything in order:\n\n```text\n", 1)[1].split("```", 1)[0]
    result, _ = check(emulator, tmp_path)
    assert result.stdout == shown


def test_verbose_check_times_each_read_and_a_401_on_a_read_is_a_sign_in_failure(emulator, tmp_path):
    result, _ = check(emulator, tmp_path, "-v")
    assert re.search(r"subnet snet-aci: read in \d+\.\d\d s", result.stderr), result.stderr
    emulator.add_fault("GET", r"/subnets/", status=401, code="InvalidAuthenticationToken")
    result, _ = check(emulator, tmp_path)
    assert result.returncode == 3 and "error: InvalidAuthenticationToken" in result.stderr, result.stderr


def test_a_failure_for_lack_of_capacity_reads_nothing_extra(emulator, tmp_path):
    emulator.outcome, emulator.delay = "NoCapacity", 1
    result = deploy(emulator, tmp_path)
    assert result.returncode == 1 and "InsufficientCapacity" in result.stderr
    assert {what for _, what in calls(emulator)} == {"openid", "token", "group", "operation"}, calls(emulator)


def test_an_answer_of_an_unexpected_shape_is_skipped_not_a_traceback(emulator, tmp_path):
    emulator.add_fault("GET", r"/subnets/", status=200, code="Unexpected")  # 200, but an error body
    result, lines = check(emulator, tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert lines["subnet snet-aci"].startswith("skipped ") and "KeyError" in lines["subnet snet-aci"]


def test_a_read_that_gets_no_answer_after_retries_is_skipped_with_the_reason(emulator, tmp_path):
    emulator.add_fault("GET", r"/subnets/", drop=True, times=3)  # azure-core tries three times
    result, lines = check(emulator, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert lines["subnet snet-aci"].startswith("skipped ") and "no answer from 127.0.0.1" in lines["subnet snet-aci"]


def test_the_registry_lists_are_read_once_for_every_registry_an_image_names(emulator, tmp_path):
    emulator.registries.append({**emulator.registry, "name": "acrtools"})
    emulator.assign(ACR_PULL, emulator.identity["principalId"], emulator.registry_id(emulator.registries[1]))
    result, lines = check(emulator, tmp_path, ACI_SIDECAR_LOGS_IMAGE="acrtools.azurecr.io/log-shipper:2")
    assert lines["registry acrtools.azurecr.io"].startswith("ok ") and lines["pull role on acrtools.azurecr.io"]
    assert result.returncode == 0, result.stdout
    lists = [r.path for r in emulator.requests if r.path.endswith("/registries")]
    assert len(lists) == 1 and "/resourceGroups/rg-aci-private/" in lists[0], lists
