"""The pins are the whole truth on this Python: every installed package is pinned, at the installed version."""

import re
from importlib.metadata import distributions

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import ROOT

INSTALLERS = {"pip", "setuptools", "wheel"}  # the venv's own tools, not the project's dependencies


def pins(path):
    """{name: version} for the pins whose environment marker holds on this Python, following -r."""
    found = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(line[3:].strip()))
        elif line and not line.startswith("#"):
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate():
                [(operator, version)] = [(spec.operator, spec.version) for spec in requirement.specifier]
                assert operator == "==", line
                found[canonicalize_name(requirement.name)] = version
    return found


def test_every_installed_package_is_pinned_at_its_installed_version():
    pinned = pins("requirements-dev.txt")
    optional = {**pins("bench/requirements.txt"), **pins("asset/requirements.txt")}  # the README installs these too
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions()}
    unpinned = {
        name: version
        for name, version in installed.items()
        if {**optional, **pinned}.get(name) != version and name not in INSTALLERS
    }
    assert unpinned == {}, "pin these, at these versions (with a marker if they differ per Python)"
    assert {name: installed.get(name) for name in pinned} == pinned


def test_the_container_instance_sdk_is_pinned_exactly_at_10_1_0():
    assert re.search(r"^azure-mgmt-containerinstance==10\.1\.0$", (ROOT / "requirements.txt").read_text(), re.M)
