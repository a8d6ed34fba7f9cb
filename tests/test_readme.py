"""The README cannot drift from the code: its commands run, its output and tables are real, and what it
teaches about Azure stays as corrected."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

from deploy_cli.hints import EVENT_HINTS, HINTS, MESSAGE_HINTS
from deploy_cli.settings import EXAMPLES, SETTINGS
from tests.conftest import GUARD, ROOT, run_deploy, write_env
from tests.emulator import Emulator

README = (ROOT / "README.md").read_text()
# The README, then the reference pages it links to: a section is found by its heading on whichever page has it.
PAGES = {"README.md": README} | {f"docs/{page.name}": page.read_text() for page in sorted((ROOT / "docs").glob("*.md"))}


def section(title: str) -> str:
    page = next(text for text in PAGES.values() if f"\n## {title}\n" in text)
    return page.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def bash_blocks(text: str = README) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.DOTALL)


def bash_lines(text: str = README) -> list[str]:
    return [line.strip() for block in bash_blocks(text) for line in block.splitlines()]


def run_readme_command(line: str, cwd, env: dict[str, str]):
    """Run the deploy.py part of a README line as written, with this interpreter."""
    words = shlex.split(line.split("&&")[-1])
    assignments = dict(word.split("=", 1) for word in words if re.fullmatch(r"[A-Z_]+=.*", word))
    words = words[len(assignments) :]
    assert words[0].endswith("python") and words[1] == "deploy.py", line
    return run_deploy(*words[2:], cwd=cwd, network="loopback", env={**env, **assignments})


@pytest.fixture
def workdir(tmp_path):
    with Emulator() as emulator:
        for name in (".env", ".env.emulator"):
            write_env(tmp_path / name, emulator.settings())
        shutil.copy(emulator.ca_path, tmp_path / ".emulator-ca.pem")
        shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
        yield tmp_path, emulator


def test_every_deploy_command_in_the_readme_runs(workdir):
    cwd, emulator = workdir
    commands = [line for line in bash_lines() if "deploy.py" in line]
    assert len(commands) >= 4, commands
    for line in commands:
        result = run_readme_command(line, cwd, {"REQUESTS_CA_BUNDLE": str(emulator.ca_path)})
        assert result.returncode == 0, f"{line}\n{result.stderr}"
    assert [record.method for record in emulator.requests].count("PUT") == 2  # the deploy and the try-it deploy
    assert [record.method for record in emulator.requests].count("DELETE") == 1


def test_the_first_setup_command_runs_the_demo_and_prints_what_run_shows():
    first, second = bash_lines()[:2]
    demo = shlex.split(first.split("&&")[-1])
    assert demo[1:] == ["-m", "tests.emulator", "--demo"] and second.endswith("-m pytest")
    env = {**os.environ, "PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": "loopback"}
    # One pipe for both streams, in the order a terminal shows them.
    result = subprocess.run([sys.executable, *demo[1:]], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, timeout=60, env=env)  # fmt: skip
    assert result.returncode == 0, result.stdout
    shown = section("Run").split("This is what the first command", 1)[1].split("```text\n", 1)[1].split("```")[0]
    assert re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", result.stdout).splitlines() == shown.splitlines()


def test_the_settings_error_shown_in_the_readme_is_what_the_script_prints(tmp_path):
    block = section("Configuration").split("```text\n", 1)[1].split("```", 1)[0]
    vnet = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-aci-private/providers/"
    bad = {"ACI_SUBNET_ID": vnet + "Microsoft.Network/virtualNetworks/vnet-aci", "ACI_PORTS": "80,8o80"}
    lines = (ROOT / ".env.example").read_text().splitlines()
    edited = [next((f"{k}={v}" for k, v in bad.items() if line.startswith(k + "=")), line) for line in lines]
    (tmp_path / ".env").write_text("\n".join(edited) + "\n")
    result = run_deploy("--dry-run", "--env-file", str(tmp_path / ".env"))
    assert result.returncode == 2
    assert result.stderr.splitlines() == block.splitlines()


def test_try_it_without_an_azure_account_works_as_written(tmp_path):
    lines = bash_lines(section("Try it without Azure and run the tests"))
    demo = next(line for line in lines if "--demo" in line and "--delay" in line)
    assert "--outcome" in demo  # the flags, next to the command that takes them
    start = next(line for line in lines if "--env-file .env.emulator" in line and "tests.emulator" in line)
    assert start.endswith(" &") and "kill %1" in lines  # one block that can be pasted whole
    deploy_line = next(line for line in lines if "deploy.py" in line)
    words = shlex.split(start.removesuffix("&"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    emulator = subprocess.Popen([sys.executable, *words[1:], "--delay", "0.5"], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert "Emulating Entra ID and ARM" in emulator.stdout.readline()
        result = run_readme_command(deploy_line, tmp_path, {"PYTHONPATH": str(GUARD)})
        assert result.returncode == 0, result.stderr
        assert "provisioning state: Succeeded" in result.stdout
    finally:
        emulator.send_signal(signal.SIGINT)
        try:
            stopped = emulator.wait(timeout=10)
        finally:
            emulator.kill()  # never left running, whatever happened above
    assert stopped == 0


def table_rows(title: str) -> list[list[str]]:
    rows = [line.strip("|").split(" | ") for line in section(title).splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]


ROWS = {  # a name pattern in .env.example -> the row of the configuration table that stands for it
    r"ACI_SIDECAR_[A-Z0-9]+_.*": "ACI_SIDECAR_<NAME>_...",
    r"ACI_INIT_\d+_.*": "ACI_INIT_<N>_...",
    r"ACI_SECURE_ENV_.*": "ACI_SECURE_ENV_<NAME>",
    r"ACI_ENV_.*": "ACI_ENV_<NAME>",
}


def canonical(name: str) -> str:
    return next((row for pattern, row in ROWS.items() if re.fullmatch(pattern, name)), name)


def test_configuration_table_env_example_and_script_name_the_same_settings_with_the_same_examples():
    table = {row[0].strip("`"): row[2].strip("`") for row in table_rows("Every setting")}
    example = {canonical(n) for n in re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)}
    patterns = {"ACI_ENV_<NAME>", "ACI_SECURE_ENV_<NAME>", "ACI_SIDECAR_<NAME>_...", "ACI_INIT_<N>_..."}
    script = {setting.name for setting in SETTINGS} | patterns
    assert set(table) == example == script
    for setting in SETTINGS:
        if table[setting.name] != "(secret)":
            pattern = re.escape(table[setting.name]).replace(r"\.\.\.", ".*")  # "..." stands for the middle
            assert re.fullmatch(pattern, setting.example), setting.name


def test_troubleshooting_names_exactly_the_codes_and_events_that_have_hints():
    cells = [row[1] for row in table_rows("Every error code")]
    named = {code for cell in cells for code in re.findall(r"`(\w+)`", cell)}
    assert named == set(HINTS) | set(EVENT_HINTS)
    for phrase in MESSAGE_HINTS:  # errors without a code are named by what they say
        assert any(phrase in cell for cell in cells), phrase


def test_every_shell_variable_is_assigned_before_it_is_used():
    assigned = set()
    for line in bash_lines():
        used = set(re.findall(r"\$([A-Z_][A-Z0-9_]*)", line)) - {"RANDOM"}
        assert used <= assigned, f"{line}: {used - assigned} not assigned earlier"
        assigned |= set(re.findall(r"^([A-Z_][A-Z0-9_]*)=", line))
        if line.startswith("read -r "):
            assigned |= set(line.split("<")[0].split()[2:])


def test_every_plain_python_deploy_command_runs_in_the_activated_venv():
    for block in bash_blocks():
        lines = block.splitlines()
        if any(line.startswith("python deploy.py") for line in lines):
            assert lines[0] == "source .venv/bin/activate", block


def test_no_example_dns_server_is_the_groups_own_address_or_azure_dns():
    examples = [
        EXAMPLES["ACI_DNS_SERVERS"],
        *re.findall(r"ACI_DNS_SERVERS=(\S+)", (ROOT / ".env.example").read_text()),
    ]
    examples += [row[2] for row in table_rows("Every setting") if row[0] == "`ACI_DNS_SERVERS`"]
    for example in examples:
        assert "10.0.0.4" not in example and "168.63.129.16" not in example
    assert "musl" in section("Limitations")


def test_what_the_readme_teaches_about_azure_stays_corrected():
    prerequisites, clean_up = section("Prerequisites"), section("Clean up")
    # The registry honours AcrPull; tags are listed before the lock-down; the principal's roles need no lookup.
    assert "--role-assignment-mode rbac" in prerequisites
    assert prerequisites.index("az acr repository show-tags") < prerequisites.index("--default-action Deny")
    grants = [line for line in bash_lines(prerequisites) if line.startswith("az role assignment create")]
    assert len(grants) == 4 and all("--assignee-object-id" in g and "--assignee-principal-type" in g for g in grants)
    assert "--assignee $" not in prerequisites
    assert "up to 30 minutes" in section("Before you start") and "up to 30 minutes" in HINTS["InaccessibleImage"]
    assert "10 to 30" not in README and "10-30" not in README
    # Clean-up removes the app registration, and says what a service association link does.
    assert "`az ad app delete --id $CLIENT_ID`" in clean_up and "az ad sp delete --id" not in clean_up
    assert "service association link" in clean_up
    # The pull's network path is documented both ways: claimed as fact nowhere, checked nowhere.
    deploys = section("What it deploys")
    assert "through a random platform public IP" in deploys and '"through the private endpoint"' in deploys
    assert "private endpoint" not in section("Verify").replace("which network path", "")
    assert "NAT gateway" in section("Limitations") and "19390" in section("Limitations")
    assert "--recreate" in section("Run") and "in place" in section("Run")


def test_the_group_example_body_is_what_a_dry_run_prints(tmp_path):
    block = section("A group of containers")
    example = block.split("```dotenv\n", 1)[1].split("```", 1)[0]
    shown = json.loads(block.split("```json\n", 1)[1].split("```", 1)[0])
    env_example = [
        line for line in (ROOT / ".env.example").read_text().splitlines() if not line.startswith("ACI_IMAGE=")
    ]
    (tmp_path / ".env").write_text("\n".join(env_example) + "\n" + example)
    result = run_deploy("--dry-run", "--env-file", str(tmp_path / ".env"))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == shown


def test_the_sign_in_ways_and_ci_without_a_secret_are_taught():
    sign_in = section("Sign-in")
    for word in ("AzureCliCredential", "WorkloadIdentityCredential", "ManagedIdentityCredential",
                 "CertificateCredential", "ClientSecretCredential", "least preferred"):  # fmt: skip
        assert word in sign_in
    assert "--create-password false" in sign_in and "az ad app federated-credential create" in sign_in
    assert "id-token: write" in sign_in and "azure/login@v2" in sign_in and "AZURE_FEDERATED_TOKEN_FILE=" in sign_in
    assert "AZURE_TOKEN_CREDENTIALS: AzureCliCredential" in sign_in and "case-sensitive" in sign_in
    assert "jq -j .value" in sign_in  # no trailing newline in the token file


def test_what_round_3_corrected_stays_corrected():
    deploys, run, clean_up, limitations = (section(name) for name in ("What it deploys", "Run", "Clean up",
                                                                      "Limitations"))  # fmt: skip
    # The VNet page is quoted for what it says: private registries other than ACR are unsupported.
    assert (
        "other than Azure Container Registry (ACR)" in deploys and "ACR with a private endpoint and managed" in deploys
    )
    assert "pulls only from registries with a public endpoint" not in README
    # Exit 0 means settled; a failed group still exists; every run restarts the containers.
    assert "--settle" in run and "still exists in Azure" in run and "restarts all its" in run
    assert "may change" in run and "az container show" in run
    # Clean-up gives the documented remedies, not "wait".
    assert "--remove delegations" in clean_up and "serviceAssociationLinks/default" in clean_up
    assert "wait ten minutes" not in README
    # Port 19390: the sources' words, no direction; ARM64 images; Python versions as they are.
    assert "outbound port 19390" not in README and "from the Azure portal" in limitations
    assert "--platform linux/amd64" in limitations
    versions = section("Python versions")
    assert "3.14 and 3.15" in versions and "end of life" in versions and "--only-binary" in versions
    assert "3.14" in (ROOT / ".ci" / "run").read_text()
    # Maintainer material sits under its own heading, after what a newcomer needs.
    development = PAGES["docs/development.md"]
    assert development.index("## For maintainers") > development.index("## Running the tests")
    assert "Graphviz" in section("For maintainers") and "Graphviz" not in section("What it deploys")
    assert "provisioning:" in run and "group:" in run
    assert "about 90 seconds" not in README and "--timeout nan" not in README
