"""deploy.py opens with the sample docs readers copy: tagged, self-contained, printing nothing."""

import ast
import re
import subprocess
import sys

from tests.conftest import GUARD, ROOT
from tests.emulator import Emulator

SOURCE = (ROOT / "deploy.py").read_text()
LINES = SOURCE.splitlines()
TAG = re.compile(r"^# \[(START|END) (\w+)\]$")


def tags() -> list[tuple[int, str, str]]:
    return [(number, *match.groups()) for number, line in enumerate(LINES, 1) if (match := TAG.match(line))]


def sample_range() -> tuple[int, int]:
    found = {(kind, name): number for number, kind, name in tags()}
    return found[("START", "sample")], found[("END", "sample")]


def sample_text() -> str:
    start, end = sample_range()
    return "\n".join(LINES[start - 1 : end]) + "\n"


def test_tags_pair_up_and_every_sample_function_has_its_own():
    open_tags = []
    for _, kind, name in tags():
        if kind == "START":
            open_tags.append(name)
        else:
            assert open_tags and open_tags.pop() == name, f"[END {name}] closes nothing open"
    assert open_tags == []
    names = {name for _, kind, name in tags() if kind == "START"}
    assert {"sample", "credential", "create_client", "build_container_group", "create_or_update", "delete"} <= names


def test_the_sample_is_at_most_270_lines_and_comes_before_the_command_line():
    start, end = sample_range()
    assert end - start + 1 <= 270
    first_cli_line = SOURCE.index("\n# ====") + 1
    assert SOURCE.count("\n", 0, first_cli_line) > end, "the divider comes after [END sample]"
    assert "def main(" in SOURCE[first_cli_line:]


def test_nothing_in_the_sample_refers_to_a_name_defined_below_it():
    start, end = sample_range()
    module = ast.parse(SOURCE)
    below = set()  # the module-level names the command-line half defines
    for node in (node for node in module.body if node.lineno > end):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            below.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            below |= {name.id for target in targets for name in ast.walk(target) if isinstance(name, ast.Name)}
        elif isinstance(node, ast.Import | ast.ImportFrom):
            below |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    assert {"main", "SETTINGS", "load_settings", "argparse"} <= below
    sample = ast.parse(sample_text())
    used = {node.id for node in ast.walk(sample) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    assert used & below == set()
    assert used.isdisjoint({"print", "os", "sys", "environ", "getenv", "input"}), "the sample prints and reads nothing"


def test_main_is_short_and_maps_errors_in_one_place():
    main = next(node for node in ast.parse(SOURCE).body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert main.end_lineno - main.lineno + 1 <= 45


def test_the_readme_gives_the_sample_half_by_its_tags_and_its_true_length():
    readme = (ROOT / "README.md").read_text()
    start, end = sample_range()
    assert f"{end - start + 1} lines" in readme
    for name in ("sample", "create_client", "build_container_group", "create_or_update", "delete"):
        assert f"[START {name}]" in readme


def test_the_sample_pasted_alone_into_python_deploys_and_deletes(tmp_path):
    """What a docs reader does: paste the sample, build Settings by hand, deploy, delete."""
    with Emulator(delay=0.5) as emulator:
        values = emulator.settings()
        reader = f"""
settings = Settings(
    subscription_id={values["AZURE_SUBSCRIPTION_ID"]!r},
    resource_group={values["AZURE_RESOURCE_GROUP"]!r},
    container_group_name="pasted-sample",
    location="westeurope",
    subnet_id={values["ACI_SUBNET_ID"]!r},
    identity_id={values["ACI_IDENTITY_ID"]!r},
    containers=(ContainerSettings(name="pasted-sample", image={values["ACI_IMAGE"]!r}, ports=(80,)),),
    sign_in="client_secret",
    tenant_id={values["AZURE_TENANT_ID"]!r},
    client_id={values["AZURE_CLIENT_ID"]!r},
    client_secret={values["AZURE_CLIENT_SECRET"]!r},
    authority_host={emulator.url!r},
    resource_manager_endpoint={emulator.url!r},
)
client = create_client(settings)
seen = []
group = create_or_update(client, settings, timeout=60, on_progress=seen.append)
assert group.provisioning_state == "Succeeded", group.provisioning_state
assert delete(client, settings) is True and delete(client, settings) is False
print("deployed and deleted", group.ip_address.ip)
"""
        env = {"PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": "loopback", "REQUESTS_CA_BUNDLE": str(emulator.ca_path)}
        result = subprocess.run(
            [sys.executable, "-"], input=sample_text() + reader, capture_output=True, text=True, env=env,
            cwd=tmp_path, timeout=60,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert result.stdout == "deployed and deleted 10.0.0.4\n"
        assert [r.method for r in emulator.requests if "/containerGroups/" in r.path].count("PUT") == 1
