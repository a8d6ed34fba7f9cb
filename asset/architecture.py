"""Draws architecture.png, the picture at the top of the README.

python -m venv .venv-asset && .venv-asset/bin/pip install -r asset/requirements.txt
.venv-asset/bin/python asset/architecture.py        # needs Graphviz: apt-get install graphviz
"""

from pathlib import Path

from diagrams import Cluster, Diagram, Edge
from diagrams.azure.compute import ContainerInstances, ContainerRegistries
from diagrams.azure.general import Subscriptions
from diagrams.azure.identity import ActiveDirectory, AppRegistrations, ManagedIdentities
from diagrams.azure.network import DNSPrivateZones, PrivateEndpoint

GRAPH = {"fontsize": "20", "pad": "0.6", "nodesep": "0.7", "ranksep": "1.1", "splines": "spline"}
NODE = {"fontsize": "13"}
STEP = {"fontsize": "12", "color": "#1f6feb", "fontcolor": "#1f6feb"}
LINK = {"fontsize": "12", "color": "#6e7781", "fontcolor": "#57606a", "style": "dashed"}

with Diagram(
    "ACI in a VNet, pulling from a private ACR as a user-assigned identity",
    filename=str(Path(__file__).with_name("architecture")),
    outformat="png",
    direction="LR",
    show=False,
    graph_attr=GRAPH,
    node_attr=NODE,
):
    deployer = AppRegistrations("deploy.py\nservice principal")
    entra = ActiveDirectory("Entra ID")
    arm = Subscriptions("Azure Resource Manager")
    identity = ManagedIdentities("user-assigned identity\nAcrPull on the registry")

    with Cluster("virtual network  10.0.0.0/16", graph_attr={"fontsize": "15", "bgcolor": "#eef6ff"}):
        with Cluster("snet-aci  10.0.0.0/24\ndelegated to Microsoft.ContainerInstance/containerGroups"):
            group = ContainerInstances("container group\nprivate IP only")
        with Cluster("snet-pe  10.0.1.0/24"):
            endpoint = PrivateEndpoint("private endpoint\nfor clients in the VNet")
    zone = DNSPrivateZones("privatelink.azurecr.io\nlinked to the VNet")

    with Cluster("Premium registry", graph_attr={"fontsize": "15", "bgcolor": "#fff8e6"}):
        registry = ContainerRegistries("admin user off\npublic access: denied\ntrusted services: allowed")

    deployer >> Edge(label="1  token (secret)", **STEP) >> entra
    deployer >> Edge(label="2  PUT containerGroups", **STEP) >> arm
    arm >> Edge(label="3  creates in subnet", **STEP) >> group
    # The pull's network path is documented both ways by Microsoft, so the arrow claims only what is
    # certain: the identity's token authorizes it, and the trusted-services exception admits it.
    (
        group
        >> Edge(label="4  pulls with the identity's token\n(AcrPull; admitted as a\ntrusted Microsoft service)", **STEP)
        >> registry
    )
    endpoint >> Edge(label="private link", **LINK) >> registry
    endpoint >> Edge(label="A record", **LINK) >> zone
    identity >> Edge(label="attached, and the\nregistry credential", **LINK) >> group
    identity >> Edge(**LINK) >> registry  # the identity's label says AcrPull
