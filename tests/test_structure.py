"""deploy.py is the sample docs readers copy (tagged, self-contained, printing nothing) plus a short main; the
command line is the deploy_cli package beside it, one concern a module; each file keeps to its budget."""

import ast
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import GUARD, ROOT
from tests.emulator import Emulator

SOURCE = (ROOT / "deploy.py").read_text()
LINES = SOURCE.splitlines()
TAG = re.compile(r"^# \[(START|END) (\w+)\]$")
PACKAGE = sorted((ROOT / "deploy_cli").glob("*.py"))
# The budgets: what a reader copies, what they read to follow a run, and what each module may grow to.
DEPLOY_LINES, SAMPLE_LINES, MAIN_LINES, MODULE_LINES, README_LINES = 400, 280, 45, 400, 450


def tags(lines: list[str]) -> list[tuple[int, str, str]]:
    return [(number, *match.groups()) for number, line in enumerate(lines, 1) if (match := TAG.match(line))]


def sample_range() -> tuple[int, int]:
    found = {(kind, name): number for number, kind, name in tags(LINES)}
    return found[("START", "sample")], found[("END", "sample")]


def sample_text() -> str:
    start, end = sample_range()
    return "\n".join(LINES[start - 1 : end]) + "\n"


def imported_modules(tree: ast.AST) -> set[str]:
    """The top-level names of every module a tree imports, wherever the import stands."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("path", [ROOT / "deploy.py", *PACKAGE], ids=lambda path: path.name)
def test_every_start_tag_has_its_end(path):
    open_tags = []
    for _, kind, name in tags(path.read_text().splitlines()):
        if kind == "START":
            open_tags.append(name)
        else:
            assert open_tags and open_tags.pop() == name, f"[END {name}] closes nothing open"
    assert open_tags == []


def test_every_sample_function_has_its_own_tags():
    names = {name for _, kind, name in tags(LINES) if kind == "START"}
    assert {"sample", "credential", "create_client", "build_container_group", "create_or_update", "delete"} <= names


def test_deploy_py_the_sample_and_main_keep_to_their_budgets_with_no_formatter_switched_off():
    start, end = sample_range()
    assert len(LINES) <= DEPLOY_LINES
    assert end - start + 1 <= SAMPLE_LINES
    main = next(node for node in ast.parse(SOURCE).body if isinstance(node, ast.FunctionDef) and node.name == "main")
    assert main.end_lineno - main.lineno + 1 <= MAIN_LINES
    assert "fmt: skip" not in SOURCE and "fmt: off" not in SOURCE


@pytest.mark.parametrize("path", PACKAGE, ids=lambda path: path.name)
def test_each_command_line_module_keeps_to_its_budget_and_says_what_it_owns_in_one_line(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MODULE_LINES
    assert "fmt: skip" not in text and "fmt: off" not in text
    docstring = ast.get_docstring(ast.parse(text))
    assert docstring and "\n" not in docstring, "a one-line docstring saying what the module owns"


def test_the_readme_keeps_to_its_budget():
    assert len((ROOT / "README.md").read_text().splitlines()) <= README_LINES


def test_the_sample_imports_nothing_of_the_command_line_and_uses_nothing_defined_below_it():
    start, end = sample_range()
    module = ast.parse(SOURCE)
    below = {node.name for node in module.body if node.lineno > end and hasattr(node, "name")}
    assert {"main", "parse_args"} <= below
    sample = ast.parse(sample_text())
    used = {node.id for node in ast.walk(sample) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)}
    assert used & below == set()
    assert "deploy_cli" not in imported_modules(sample)
    assert used.isdisjoint({"print", "os", "sys", "environ", "getenv", "input"}), "the sample prints and reads nothing"
    # Below the sample only main imports, and only inside itself: `import deploy` loads the sample alone.
    top_level = [node for node in module.body if isinstance(node, ast.Import | ast.ImportFrom) and node.lineno > end]
    assert top_level == []


def test_the_package_imports_the_sample_as_deploy_and_never_the_script_itself():
    for path in PACKAGE:
        tree = ast.parse(path.read_text())
        assert "__main__" not in imported_modules(tree), path.name
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module == "deploy":
                assert node.level == 0, path.name


def test_import_deploy_loads_no_command_line_module():
    code = "import sys, deploy; print(sorted(m for m in sys.modules if m.startswith('deploy_cli')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "[]\n"


def test_python_deploy_py_registers_itself_as_deploy_so_the_package_finds_the_one_that_runs():
    """Otherwise `from deploy import Settings` would load the file a second time, with classes of its own."""
    result = subprocess.run(
        [sys.executable, "-v", "deploy.py", "--dry-run", "--env-file", ".env.example"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert re.search(r"^import 'deploy_cli\.load'", result.stderr, re.M), "python -v names each module it imports"
    assert not re.search(r"^import 'deploy' ", result.stderr, re.M)


def test_deploy_py_copied_alone_imports_and_its_command_line_says_where_the_rest_is(tmp_path):
    shutil.copy(ROOT / "deploy.py", tmp_path / "deploy.py")
    env = {"PYTHONPATH": "", "PATH": "/usr/bin:/bin"}
    imported = subprocess.run(
        [sys.executable, "-c", "import deploy; print(deploy.build_container_group.__name__)"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout == "build_container_group\n"
    ran = subprocess.run(
        [sys.executable, "deploy.py", "--dry-run"], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60
    )
    assert ran.returncode == 2
    assert ran.stdout == ""
    assert len(ran.stderr.splitlines()) == 1, ran.stderr
    assert "deploy_cli" in ran.stderr and "requirements.txt" in ran.stderr and "Traceback" not in ran.stderr


def test_the_readme_gives_the_sample_by_its_tags_and_its_true_length():
    readme = (ROOT / "README.md").read_text()
    start, end = sample_range()
    assert f"{end - start + 1} lines" in readme
    for name in ("sample", "credential", "create_client", "build_container_group", "create_or_update", "delete"):
        assert f"[START {name}]" in readme


def test_every_relative_link_in_the_readme_and_docs_resolves():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) >= 8, "README and the docs pages: sign-in, containers, configuration, check, ..."
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            assert file.exists(), f"{page.name}: {target}"
            if anchor and file.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", file.read_text(), re.M)
                slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
                assert anchor in slugs, f"{page.name}: {target}"


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
    containers=(ContainerSettings(name="pasted-sample", image={values["ACI_IMAGE"]!r}),),  # the defaults deploy
    sign_in="client_secret",
    tenant_id={values["AZURE_TENANT_ID"]!r},
    client_id={values["AZURE_CLIENT_ID"]!r},
    client_secret={values["AZURE_CLIENT_SECRET"]!r},
    authority_host={emulator.url!r},
    resource_manager_endpoint={emulator.url!r},
)
client = create_client(settings, create_credential(settings))
seen = []
group = create_or_update(client, settings, timeout=60, on_progress=seen.append)
assert group.provisioning_state == "Succeeded", group.provisioning_state
assert delete(client, settings) is True and delete(client, settings) is False
print("deployed and deleted", group.ip_address.ip)
"""
        env = {"PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": "loopback", "REQUESTS_CA_BUNDLE": str(emulator.ca_path)}
        result = subprocess.run(
            [sys.executable, "-"],
            input=sample_text() + reader,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout == "deployed and deleted 10.0.0.4\n"
        assert [r.method for r in emulator.requests if "/containerGroups/" in r.path].count("PUT") == 1


def test_the_readme_snippet_that_uses_the_sample_deploys_as_written(tmp_path):
    """The README's Python block, its placeholders filled in, run beside deploy.py against the emulator."""
    snippet = (ROOT / "README.md").read_text().split("```python\n", 1)[1].split("```", 1)[0]
    with Emulator(delay=0.3) as emulator:
        values = emulator.settings()
        filled = {
            "<SUBSCRIPTION_ID>": values["AZURE_SUBSCRIPTION_ID"],
            "<SUBNET_ID>": values["ACI_SUBNET_ID"],
            "<IDENTITY_ID>": values["ACI_IDENTITY_ID"],
            "<ACR>": "acrprivatedemo",
        }
        for placeholder, value in filled.items():
            snippet = snippet.replace(placeholder, value)
        # Signed in as the emulator's service principal: the snippet's default is the Azure CLI's account.
        snippet = snippet.replace(
            'location="westeurope",',
            f'location="westeurope", sign_in="client_secret", '
            f"tenant_id={values['AZURE_TENANT_ID']!r}, client_id={values['AZURE_CLIENT_ID']!r}, "
            f"client_secret={values['AZURE_CLIENT_SECRET']!r}, authority_host={emulator.url!r}, "
            f"resource_manager_endpoint={emulator.url!r},",
        )
        shutil.copy(ROOT / "deploy.py", tmp_path / "deploy.py")
        env = {"PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": "loopback", "REQUESTS_CA_BUNDLE": str(emulator.ca_path)}
        result = subprocess.run(
            [sys.executable, "-"], input=snippet, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "10.0.0.4"
