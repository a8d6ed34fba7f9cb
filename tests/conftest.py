import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARD = Path(__file__).resolve().parent / "guard"
SUBSCRIPTION = "11111111-2222-3333-4444-555555555555"
IDENTITY_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-net/providers/"
    "Microsoft.ManagedIdentity/userAssignedIdentities/id-pull"
)
SUBNET_ID = (
    f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-net/providers/Microsoft.Network/virtualNetworks/vnet/subnets/aci"
)
CLIENT_SECRET = "s3cr3t~Client.Value-0123456789"
SECURE_VALUE = "p@ss-Secure-Env-9876"


@pytest.fixture
def settings() -> dict[str, str]:
    """A complete, valid set of settings, as a user's .env would have them."""
    return {
        "AZURE_TENANT_ID": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "AZURE_CLIENT_ID": "99999999-8888-7777-6666-555555555555",
        "AZURE_CLIENT_SECRET": CLIENT_SECRET,
        "AZURE_SUBSCRIPTION_ID": SUBSCRIPTION,
        "AZURE_RESOURCE_GROUP": "rg-apps",
        "AZURE_LOCATION": "westeurope",
        "ACI_CONTAINER_GROUP_NAME": "private-app",
        "ACI_SUBNET_ID": SUBNET_ID,
        "ACI_IDENTITY_ID": IDENTITY_ID,
        "ACI_IMAGE": "myregistry.azurecr.io/app:1.0",
        "ACI_SECURE_ENV_DB_PASSWORD": SECURE_VALUE,
    }


@pytest.fixture
def emulator():
    """The local Entra ID + ARM emulator, stopped when the test ends, however it ends."""
    from tests.emulator import Emulator

    with Emulator() as running:
        yield running


def write_env(path: Path, settings: dict[str, str]) -> Path:
    path.write_text("".join(f"{key}={value}\n" for key, value in settings.items()))
    return path


def run_deploy(*args: str, env: dict[str, str] | None = None, network: str = "none", timeout: float = 60,
               launcher: tuple[str, ...] = (), **kwargs):  # fmt: skip
    """Run deploy.py exactly as a user does, in a clean environment, behind the network guard."""
    base = {key: os.environ[key] for key in ("PATH", "HOME", "SYSTEMROOT") if key in os.environ}
    full_env = {**base, "PYTHONPATH": str(GUARD), "DEPLOY_TEST_NETWORK": network, **(env or {})}
    return subprocess.run(
        [*launcher, sys.executable, str(ROOT / "deploy.py"), *args],
        env=full_env,
        cwd=kwargs.pop("cwd", GUARD),  # never a developer's own .env
        capture_output=True,
        text=True,
        timeout=timeout,
        **kwargs,
    )
