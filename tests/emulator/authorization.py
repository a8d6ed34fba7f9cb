"""Microsoft.Authorization: role assignments listed for a scope and role definitions, as recorded
(azure-cli 2022-04-01): roleDefinitionId is qualified by subscription even for tenant-wide roles,
createdOn has 7 fractional digits, unset fields are null; `atScope()` gives the assignments at and above
the scope, `assignedTo('<id>')` the principal's (through its groups too, which the emulator lacks)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone

from tests.emulator.common import arm_error

ASSIGNMENTS_PATH = re.compile(r"(?P<scope>.*)/providers/Microsoft\.Authorization/roleAssignments", re.IGNORECASE)
DEFINITION_PATH = re.compile(r"(?:/subscriptions/[^/]+)?/providers/Microsoft\.Authorization/roleDefinitions/"
                             r"(?P<guid>[0-9a-f-]{36})", re.IGNORECASE)  # fmt: skip
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
REPOSITORY_READER = "b93aa761-3e63-49ed-ac28-beffa264f7ac"
# docs: the built-in roles that pull in each mode (FACTS.md lists them); the emulator's ACR honours these.
DATA_READER = "577a9874-89fd-4f24-9dbd-b5034d0ad23a"
PULLS = {
    "LegacyRegistryPermissions": {ACR_PULL, "8311e382-0749-4cb8-b61a-304f252e45ec",
                                  "8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "b24988ac-6180-42a0-ab88-20f7382dd24c",
                                  "acdd72a7-3385-48ef-bd42-f606fba81ae7", DATA_READER},
    "AbacRepositoryPermissions": {REPOSITORY_READER, "2a1e307c-b015-4ebd-883e-5b7698a07328",
                                  "2efddaa5-3f1f-4df3-97df-af3f13818f4c", DATA_READER},
}  # fmt: skip


def stamp(minutes_ago: float) -> str:
    moment = datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}1Z"  # 7 digits, as recorded


def within(scope: str, resource: str) -> bool:
    """Whether scope is resource or above it, compared case-insensitively segment by segment."""
    return (resource.rstrip("/") + "/").lower().startswith(scope.rstrip("/").lower() + "/")


class Authorization:
    """Mixed into Emulator. Tests change role_assignments (assign, or clear) and role_definitions (custom roles)."""

    def authorization_defaults(self) -> None:
        self.role_assignments: list[dict] = []
        self.role_definitions: dict[str, dict] = {}  # guid -> the definition's properties (custom roles)

    def assign(self, role: str, principal: str, scope: str, minutes_ago: float = 240, condition: str = "") -> None:
        self.role_assignments.append(
            {
                "role": role,
                "principal": principal,
                "scope": scope,
                "created": stamp(minutes_ago),
                "condition": condition,
            }
        )

    def can_pull(self, principal: str, registry_id: str, mode: str) -> bool:
        return any(a["principal"] == principal and within(a["scope"], registry_id) and a["role"] in PULLS[mode]
                   for a in self.role_assignments)  # fmt: skip

    def assignment_list(self, match: re.Match, query: dict) -> tuple[int, dict]:
        where = query.get("$filter", [""])[0]
        principal = re.search(r"(?:assignedTo\(|principalId eq )'([^']+)'", where)
        scope = match["scope"] or "/"
        above = [a for a in self.role_assignments if within(a["scope"], scope)]
        below = [
            a
            for a in self.role_assignments
            if "atScope()" not in where and a not in above and within(scope, a["scope"])
        ]
        found = [a for a in above + below if not principal or a["principal"] == principal[1]]
        return 200, {"value": [self.assignment_body(a) for a in found]}

    def assignment_body(self, assignment: dict) -> dict:
        guid = str(uuid.uuid5(uuid.NAMESPACE_URL, repr(assignment)))
        role = f"/subscriptions/{self.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
        return {"properties": {"roleDefinitionId": role + assignment["role"], "principalId": assignment["principal"],
                "principalType": "ServicePrincipal", "scope": assignment["scope"],
                "condition": assignment.get("condition") or None,  # docs: with conditionVersion 2.0
                "conditionVersion": "2.0" if assignment.get("condition") else None,
                "createdOn": assignment["created"], "updatedOn": assignment["created"],
                "createdBy": None, "updatedBy": None, "delegatedManagedIdentityResourceId": None, "description": None},
                "id": f"{assignment['scope'].rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/{guid}",
                "type": "Microsoft.Authorization/roleAssignments", "name": guid}  # fmt: skip

    def definition(self, match: re.Match) -> tuple[int, dict]:
        found = self.role_definitions.get(match["guid"].lower())
        if found is None:  # the code is a guess
            return 404, arm_error("RoleDefinitionDoesNotExist", "The specified role definition does not exist.")
        return 200, {"properties": found, "id": match[0], "type": "Microsoft.Authorization/roleDefinitions",
                     "name": match["guid"]}  # fmt: skip
