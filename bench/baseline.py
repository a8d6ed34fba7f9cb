"""The baseline: what most tutorials do. Same model and SDK, the SDK's defaults, .result().

Reads the same settings as deploy.py from the environment. Only the endpoint keywords are extra,
so that it can talk to the emulator; they change nothing about polling.
"""

import os

from azure.identity import ClientSecretCredential
from azure.mgmt.containerinstance import ContainerInstanceManagementClient
from azure.mgmt.containerinstance.models import (
    Container,
    ContainerGroup,
    ContainerGroupIdentity,
    ContainerGroupSubnetId,
    ContainerPort,
    ImageRegistryCredential,
    IpAddress,
    Port,
    ResourceRequests,
    ResourceRequirements,
    UserAssignedIdentities,
)

env = os.environ
credential = ClientSecretCredential(
    env["AZURE_TENANT_ID"],
    env["AZURE_CLIENT_ID"],
    env["AZURE_CLIENT_SECRET"],
    authority=env["AZURE_AUTHORITY_HOST"],
    disable_instance_discovery=True,
)
client = ContainerInstanceManagementClient(
    credential,
    env["AZURE_SUBSCRIPTION_ID"],
    base_url=env["AZURE_RESOURCE_MANAGER_ENDPOINT"],
    credential_scopes=[env["AZURE_RESOURCE_MANAGER_ENDPOINT"] + "/.default"],
)
identity_id, image = env["ACI_IDENTITY_ID"], env["ACI_IMAGE"]
group = ContainerGroup(
    location=env["AZURE_LOCATION"],
    os_type="Linux",
    containers=[
        Container(
            name=env["ACI_CONTAINER_GROUP_NAME"],
            image=image,
            ports=[ContainerPort(port=80)],
            resources=ResourceRequirements(requests=ResourceRequests(cpu=1, memory_in_gb=1.5)),
        )
    ],
    identity=ContainerGroupIdentity(
        type="UserAssigned", user_assigned_identities={identity_id: UserAssignedIdentities()}
    ),
    image_registry_credentials=[ImageRegistryCredential(server=image.split("/")[0], identity=identity_id)],
    subnet_ids=[ContainerGroupSubnetId(id=env["ACI_SUBNET_ID"])],
    ip_address=IpAddress(type="Private", ports=[Port(port=80)]),
)
result = client.container_groups.begin_create_or_update(
    env["AZURE_RESOURCE_GROUP"], env["ACI_CONTAINER_GROUP_NAME"], group
).result()
print(result.provisioning_state)
