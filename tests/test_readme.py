"""The README cannot drift from the code: its deploy.py commands run, its output and settings are real."""

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

from tests.conftest import GUARD, ROOT, run_deploy, write_env
from tests.emulator import Emulator

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, re.DOTALL)


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def bash_lines(text: str = README) -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    return [line.strip() for block in blocks for line in block.splitlines()]


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
    assert len(commands) >= 5, commands
    for line in commands:
        result = run_readme_command(line, cwd, {"REQUESTS_CA_BUNDLE": str(emulator.ca_path)})
        assert result.returncode == 0, f"{line}\n{result.stderr}"
        if line == "python deploy.py":
            shown = section("Run").split("```text", 2)[2]
            for output_line in result.stdout.splitlines():
                assert output_line in shown, f"README's sample output lacks: {output_line}"
    assert [record.method for record in emulator.requests].count("PUT") == 2  # the deploy and the try-it deploy
    assert [record.method for record in emulator.requests].count("DELETE") == 1


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
    start, deploy = [line for line in bash_lines(section("Try it without an Azure account")) if "python" in line]
    words = shlex.split(start.split("&&")[-1])
    assert words[1:3] == ["-m", "tests.emulator"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    emulator = subprocess.Popen([sys.executable, *words[1:], "--delay", "0.5"], cwd=tmp_path, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert "Emulating Entra ID and ARM" in emulator.stdout.readline()
        result = run_readme_command(deploy, tmp_path, {"PYTHONPATH": str(GUARD)})
        assert result.returncode == 0, result.stderr
        assert "provisioning state: Succeeded" in result.stdout
    finally:
        emulator.send_signal(signal.SIGINT)
        assert emulator.wait(timeout=10) == 0


def names_in_table() -> set[str]:
    return set(re.findall(r"^\| `([A-Z_<>]+)` \|", section("Configuration"), re.MULTILINE))


def canonical(name: str) -> str:
    for prefix in ("ACI_SECURE_ENV_", "ACI_ENV_"):
        if name.startswith(prefix):
            return prefix + "<NAME>"
    return name


def test_configuration_table_env_example_and_script_name_the_same_settings():
    example = {canonical(n) for n in re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M)}
    script = {canonical(n) for n in re.findall(r'"((?:AZURE|ACI)_[A-Z_]+)"', (ROOT / "deploy.py").read_text())}
    script.discard("ACI_")  # the prefix that unknown settings are checked against
    assert names_in_table() == example == script
