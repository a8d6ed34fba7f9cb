"""Microsoft.ManagedIdentity: GET of a user-assigned identity, as recorded (Azure PowerShell, 2023-01-31):
the id comes back with lowercase `resourcegroups` whatever the request said; `isolationScope` exists
only from api-version 2024-11-30 (spec)."""

from __future__ import annotations

import re

from tests.emulator.common import arm_error

IDENTITY_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.ManagedIdentity/"
    r"userAssignedIdentities/(?P<name>[^/]+)",
    re.IGNORECASE,
)
PRINCIPAL_ID = "5d1f2c3b-0000-4000-8000-00000000f00d"


class ManagedIdentities:
    """Mixed into Emulator. Tests change identity (location, isolationScope) or empty identities."""

    def identity_defaults(self, identity_id: str) -> None:
        self.identity_id = identity_id
        self.identities = {identity_id.lower(): {"location": "westeurope", "principalId": PRINCIPAL_ID,
                                                 "clientId": "6e2a3d4c-0000-4000-8000-00000000c1d0",
                                                 "isolationScope": "None"}}  # fmt: skip
        self.identity = self.identities[identity_id.lower()]

    def identity_body(self, match: re.Match, api_version: str) -> tuple[int, dict]:
        found = self.identities.get(match[0].lower())
        if found is None:  # the gateway's ResourceNotFound, as for other tracked types (unverified)
            message = f"The Resource 'Microsoft.ManagedIdentity/userAssignedIdentities/{match['name']}' under "
            return 404, arm_error("ResourceNotFound", message + f"resource group '{match['rg']}' was not found.")
        properties = {"tenantId": self.tenant_id, "principalId": found["principalId"], "clientId": found["clientId"]}
        if api_version >= "2024-11-30":
            properties["isolationScope"] = found["isolationScope"]
        lowered = f"/subscriptions/{match['sub']}/resourcegroups/{match['rg']}" + match[0][match.end("rg") :]
        return 200, {"location": found["location"], "tags": {}, "id": lowered, "name": match["name"],
                     "type": "Microsoft.ManagedIdentity/userAssignedIdentities", "properties": properties}  # fmt: skip
