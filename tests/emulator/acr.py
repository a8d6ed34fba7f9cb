"""Microsoft.ContainerRegistry: the registry lists of a resource group and of a subscription (the only
way to find a registry by its login server), in the 2025-11-01 spec's shape. `roleAssignmentMode` is
absent before 2025-11-01 among stable versions (recordings); Basic registries have no networkRuleSet."""

from __future__ import annotations

import re

REGISTRIES_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/providers/Microsoft\.ContainerRegistry/"
    r"registries",
    re.IGNORECASE,
)
PAGE_SIZE = 2  # spec: lists page with nextLink; small, so that paging is exercised


class Registries:
    """Mixed into Emulator. Tests change registry: sku, public_access, default_action, bypass, mode."""

    def registry_defaults(self, resource_group: str) -> None:
        self.registries = [{"name": "acrprivatedemo", "resource_group": resource_group, "sku": "Premium",
                            "public_access": "Enabled", "default_action": "Deny", "bypass": "AzureServices",
                            "mode": "LegacyRegistryPermissions", "location": "westeurope"}]  # fmt: skip
        self.registry = self.registries[0]

    def registry_id(self, registry: dict) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{registry['resource_group']}/providers/"
                f"Microsoft.ContainerRegistry/registries/{registry['name']}")  # fmt: skip

    def registry_body(self, registry: dict, api_version: str) -> dict:
        properties = {"loginServer": f"{registry['name']}.azurecr.io", "provisioningState": "Succeeded",
                      "adminUserEnabled": False, "publicNetworkAccess": registry["public_access"],
                      "networkRuleBypassOptions": registry["bypass"]}  # fmt: skip
        if registry["sku"] == "Premium":
            properties["networkRuleSet"] = {"defaultAction": registry["default_action"], "ipRules": []}
        if api_version >= "2025-11-01":
            properties["roleAssignmentMode"] = registry["mode"]
        return {"id": self.registry_id(registry), "name": registry["name"], "type": "Microsoft.ContainerRegistry/"
                "registries", "location": registry["location"], "tags": {}, "sku": {"name": registry["sku"],
                "tier": registry["sku"]}, "properties": properties}  # fmt: skip

    def registry_list(self, match: re.Match, query: dict) -> tuple[int, dict]:
        version = query.get("api-version", [""])[0]
        found = [
            r for r in self.registries if match["rg"] is None or r["resource_group"].lower() == match["rg"].lower()
        ]
        start = int(query.get("$skipToken", ["0"])[0])
        page = {"value": [self.registry_body(r, version) for r in found[start : start + PAGE_SIZE]]}
        if start + PAGE_SIZE < len(found):
            page["nextLink"] = f"{self.url}{match[0]}?api-version={version}&$skipToken={start + PAGE_SIZE}"
        return 200, page
