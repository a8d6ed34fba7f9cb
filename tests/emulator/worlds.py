"""Ways to sign in to the emulator, and ways to break its world, for `python -m tests.emulator` and the tests:
each writes what deploy.py's env file needs, or changes one thing --check is there to find."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.emulator import ROOT, Emulator
from tests.emulator.entra import TOKEN_EXCHANGE_AUDIENCE, FederatedCredential

MANAGED_IDENTITY_CLIENT_ID = "5e1f7c2a-0000-4000-8000-0000000000a1"


def federated_token(emulator: Emulator, folder: Path, lifetime: int = 300) -> Path:
    """A token file as CI writes one: signed by an issuer the app registration trusts (as GitHub's would be)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer, subject = "https://token.actions.githubusercontent.com", "repo:contoso/aci-private:environment:demo"
    emulator.federated_credentials.append(FederatedCredential(issuer, subject, key.public_key()))
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": TOKEN_EXCHANGE_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime,
    }
    path = folder / "oidc-token"
    path.write_text(jwt.encode(claims, key, algorithm="RS256"))
    return path


def standin_az(emulator: Emulator, folder: Path, signed_in: bool = True, subscriptions=None) -> tuple[Path, Path]:
    """The tests' stand-in az (tests/az_standin.py, printing what az 2.91.0 prints), signed in as the emulator's
    service principal: the folder to put first on PATH, and its state file (AZ_STANDIN_STATE)."""
    bin_folder = folder / "bin"
    bin_folder.mkdir(exist_ok=True)
    (bin_folder / "az").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "az_standin.py"}" "$@"\n')
    (bin_folder / "az").chmod(0o755)
    state = {
        "signed_in": signed_in,
        "subscriptions": subscriptions or [emulator.subscription_id],
        "tenant": emulator.tenant_id,
        "client_id": emulator.client_id,
        "secret": emulator.client_secret,
        "token_url": f"{emulator.url}/{emulator.tenant_id}/oauth2/v2.0/token",
        "calls": str(folder / "az-calls.jsonl"),
    }
    (folder / "az-state.json").write_text(json.dumps(state))
    return bin_folder, folder / "az-state.json"


def sign_in(emulator: Emulator, way: str, folder: Path) -> dict[str, str]:
    """The env file's settings for one way of signing in; folder keeps the token file or the stand-in az."""
    settings = emulator.settings()
    plain = {k: v for k, v in settings.items() if not k.startswith(("AZURE_TENANT", "AZURE_CLIENT", "AZURE_AUTH"))}
    if way == "federated-token":
        del settings["AZURE_CLIENT_SECRET"]
        return {**settings, "AZURE_FEDERATED_TOKEN_FILE": str(federated_token(emulator, folder, lifetime=3600))}
    if way == "azure-cli":
        _, state = standin_az(emulator, folder)
        return {**plain, "AZ_STANDIN_STATE": str(state)}
    if way == "managed-identity":
        emulator.managed_identities.add(MANAGED_IDENTITY_CLIENT_ID)
        return {
            **plain,
            "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
            "AZURE_CLIENT_ID": MANAGED_IDENTITY_CLIENT_ID,
            "AZURE_POD_IDENTITY_AUTHORITY_HOST": emulator.url,
        }  # IMDS: the emulator
    return settings  # client-secret


def no_delegation(emulator: Emulator) -> None:
    emulator.subnet_properties["delegations"] = []


def no_pull_role(emulator: Emulator) -> None:
    emulator.role_assignments.clear()


def no_trusted_services(emulator: Emulator) -> None:
    emulator.registry["bypass"] = "None"


def vnet_elsewhere(emulator: Emulator) -> None:
    emulator.vnet_location = "northeurope"


def abac_mode(emulator: Emulator) -> None:  # AcrPull stays assigned, and ABAC mode ignores it
    emulator.registry["mode"] = "AbacRepositoryPermissions"


BREAKS = {
    "no-delegation": no_delegation,
    "no-pull-role": no_pull_role,
    "no-trusted-services": no_trusted_services,
    "vnet-elsewhere": vnet_elsewhere,
    "abac": abac_mode,
}
SIGN_IN = ("client-secret", "federated-token", "azure-cli", "managed-identity")
