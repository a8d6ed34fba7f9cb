"""Microsoft.Network: GET of the virtual network and its subnet, in the shape of recorded answers
(azure-cli recordings 2022-01-01 and 2023-09-01): unused keys are absent, not empty; `delegations` is
always there; `addressPrefix` or `addressPrefixes`, never both; a container group adds a service
association link `acisal`, and is not in `ipConfigurations`."""

from __future__ import annotations

import re

from tests.emulator.common import arm_error

NETWORK_PATH = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.Network/virtualNetworks/"
    r"(?P<vnet>[^/]+)(?:/subnets/(?P<subnet>[^/]+))?",
    re.IGNORECASE,
)
CONTAINER_GROUPS = "Microsoft.ContainerInstance/containerGroups"


def delegation(subnet_id: str, service: str = CONTAINER_GROUPS, name: str = "aci-delegation") -> dict:
    """recordings: the name is free text; serviceName is what counts."""
    return {"name": name, "id": f"{subnet_id}/delegations/{name}", "type": "Microsoft.Network/virtualNetworks/"
            "subnets/delegations", "properties": {"provisioningState": "Succeeded", "serviceName": service,
            "actions": ["Microsoft.Network/virtualNetworks/subnets/action"]}}  # fmt: skip


class Network:
    """Mixed into Emulator. Tests change vnet_location and subnet_properties (the subnet's "properties")."""

    def network_defaults(self, subnet_id: str) -> None:
        self.subnet_id, self.vnet_location = subnet_id, "westeurope"
        nat = subnet_id.split("/providers/")[0] + "/providers/Microsoft.Network/natGateways/nat-aci"
        self.subnet_properties = {"provisioningState": "Succeeded", "addressPrefix": "10.0.0.0/24",
                                  "natGateway": {"id": nat}, "delegations": [delegation(subnet_id)],
                                  "privateEndpointNetworkPolicies": "Disabled",
                                  "privateLinkServiceNetworkPolicies": "Enabled"}  # fmt: skip

    def subnet_body(self) -> dict:
        properties = dict(self.subnet_properties)
        if self.groups and not properties.get("serviceAssociationLinks"):  # recordings: after the first group
            link = {"name": "acisal", "id": f"{self.subnet_id}/serviceAssociationLinks/acisal", "properties": {
                "provisioningState": "Succeeded", "linkedResourceType": CONTAINER_GROUPS,
                "enabledForArmDeployments": False, "allowDelete": True, "locations": [self.vnet_location]}}  # fmt: skip
            properties["serviceAssociationLinks"] = [link]
        return {"name": self.subnet_id.rsplit("/", 1)[1], "id": self.subnet_id, "etag": 'W/"emulator"',
                "properties": properties, "type": "Microsoft.Network/virtualNetworks/subnets"}  # fmt: skip

    def delegated(self) -> bool:
        return any(d["properties"]["serviceName"] == CONTAINER_GROUPS for d in self.subnet_properties["delegations"])

    def network(self, match: re.Match) -> tuple[int, dict]:
        vnet_id = self.subnet_id.rsplit("/subnets/", 1)[0]
        if not match[0].lower().startswith(vnet_id.lower()):  # recordings: the gateway names the missing VNet
            message = f"The Resource 'Microsoft.Network/virtualNetworks/{match['vnet']}' under resource group "
            return 404, arm_error("ResourceNotFound", message + f"'{match['rg']}' was not found.")
        if match["subnet"] is None:
            return 200, {"name": match["vnet"], "id": vnet_id, "etag": 'W/"emulator"', "type":
                         "Microsoft.Network/virtualNetworks", "location": self.vnet_location, "properties": {
                         "provisioningState": "Succeeded", "addressSpace": {"addressPrefixes": ["10.0.0.0/16"]},
                         "subnets": [self.subnet_body()]}}  # fmt: skip
        if match[0].lower() != self.subnet_id.lower():  # the Network RP's own 404 (azure-cli#19761; unverified here)
            return 404, {"error": {"details": [], "code": "NotFound", "message": f"Resource {match[0]} not found."}}
        return 200, self.subnet_body()
