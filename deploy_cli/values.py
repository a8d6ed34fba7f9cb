"""What one setting's text must be: each check turns it into its value or says what it must be."""

import ipaddress
import os
import re
import shlex
from collections.abc import Callable

from azure.mgmt.core.tools import parse_resource_id

from deploy import ACR_SUFFIXES

GUID = re.compile(r"[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")  # base64url of '{"', twice
# Entra client secrets are about 40 characters with a "~" in them; a value of that shape is never echoed.
SECRET_SHAPE = re.compile(r"(?=.*~)[A-Za-z0-9_.~-]{30,}")
# host[:port]/path[:tag][@digest], as the Docker reference grammar has it; the host needs a dot or port.
IMAGE = re.compile(
    r"(?P<host>[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"(?::[0-9]+)?)/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
MAX_PORTS = 5  # ACI's limit per IP address


# Checks: each turns a setting's text into its Settings value, or raises ValueError saying what it must be.
def guid(what: str) -> Callable[[str], str]:
    """A check for a GUID; one pasted with braces around it ({...}, as some tools write it) says so."""

    def check(value: str) -> str:
        if value.startswith("{") and value.endswith("}") and GUID.fullmatch(value[1:-1]):
            raise ValueError(f"{what}: write it without the braces around it")
        if not GUID.fullmatch(value):
            raise ValueError(what)
        return value

    return check


def shared_dir(value: str) -> str:
    """An absolute path of the group's own: an empty directory mounted over / or a system folder hides the image's."""
    if not re.fullmatch(r"/[^:]*", value):
        raise ValueError("an absolute path inside the containers, without a colon (such as /shared)")
    top = "/" + value.strip("/").split("/", 1)[0]
    if top in ("/", "/bin", "/boot", "/dev", "/etc", "/lib", "/lib64", "/proc", "/root", "/sbin", "/sys", "/usr"):
        raise ValueError("a folder of its own, such as /shared: an empty directory there hides what the image has")
    return value


def matching(pattern: str, what: str, then: Callable[[str], object] = str) -> Callable[[str], object]:
    """A check: the whole value matches pattern, and then(value) (whose ValueError means the same) is the result."""

    def check(value: str) -> object:
        try:
            if re.fullmatch(pattern, value):
                return then(value)
        except ValueError:
            pass
        raise ValueError(what)

    return check


def resource_id(resource_type: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        value = value.rstrip("/")
        if "/resource/subscriptions/" in value or value.startswith("https://"):
            raise ValueError(
                f"a {resource_type} resource ID (this is a portal URL: use the part from /subscriptions/ "
                "up to the resource's name)"
            )
        if resource_type.endswith("userAssignedIdentities") and (
            value.lower() == "systemassigned" or GUID.fullmatch(value)
        ):
            raise ValueError(
                "a user-assigned identity's resource ID (a system-assigned identity cannot pull "
                "images; a client or principal ID is not it: az identity show --query id)"
            )
        parts = parse_resource_id(value)
        children = [parts[f"child_type_{n}"] for n in range(1, parts.get("last_child_num", 0) + 1)]
        found = "/".join(filter(None, [parts.get("namespace"), parts.get("type"), *children]))
        if found.lower() != resource_type.lower() or "resource_group" not in parts:
            raise ValueError(f"a {resource_type} resource ID (it names {found or 'no resource type'})")
        return value

    return check


def image_reference(value: str) -> str:
    if value.lower().startswith(("https://", "http://")):
        raise ValueError("an image reference, without https:// in front (registry host/repository:tag)")
    host, _, path = value.partition("/")
    if not path or not ("." in host or ":" in host or host == "localhost"):  # a Docker Hub short name
        raise ValueError(
            "a fully qualified image reference (registry host/repository:tag); a Docker Hub name such as nginx is "
            "docker.io/library/nginx:<tag>, whose pulls are rate-limited for ACI: import it into your registry with "
            "az acr import"
        )
    if path != path.lower() and IMAGE.fullmatch(f"{host}/{path.lower()}"):
        raise ValueError("a valid image reference: repositories are lowercase")
    if not (IMAGE.fullmatch(value) and ("." in host or ":" in host or host == "localhost")):
        raise ValueError("a fully qualified image reference (registry host/repository:tag)")
    return value


def registry_image(value: str) -> str:
    if not image_reference(value).split("/", 1)[0].lower().endswith(ACR_SUFFIXES):
        raise ValueError("in an Azure Container Registry, which the identity pulls from")
    return value


positive_number = matching(r"(?![0.]*$)(\d+\.?\d*|\.\d+)", "a positive number", float)


def port_list(value: str) -> tuple[int, ...]:
    ports = [port.strip() for port in value.split(",") if port.strip()]
    if not all(port.isdigit() and 1 <= int(port) <= 65535 for port in ports):
        raise ValueError("a comma-separated list of ports from 1 to 65535")
    unique = tuple(dict.fromkeys(int(port) for port in ports))
    if len(unique) > MAX_PORTS:
        raise ValueError(f"at most {MAX_PORTS} ports, ACI's limit for one IP address ({len(unique)} given)")
    return unique


def command_line(value: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(value))
    except ValueError as error:
        raise ValueError(f"a shell command line ({error})") from None


def one_of(what: str, *choices: str) -> Callable[[str], str]:
    return matching(
        "(?i)" + "|".join(choices),
        f"{what}: {', '.join(choices[:-1])} or {choices[-1]}",
        lambda v: next(choice for choice in choices if choice.lower() == v.lower()),
    )


ip_list = matching(
    r"[^,]*(,[^,]*)*",
    "a comma-separated list of IP addresses",
    lambda v: tuple(str(ipaddress.ip_address(a)) for a in map(str.strip, v.split(",")) if a),
)
https_url = matching(r"https://[^/?#\s]+([/?#]\S*)?", "an https:// URL", lambda v: v.rstrip("/"))


def readable_file(value: str) -> str:
    if not os.access(value, os.R_OK) or os.path.isdir(value):
        raise ValueError(
            "a readable file (check the path: ~ is not expanded; inside double quotes write each "
            "backslash twice, or use /)"
        )
    return value


def token_file(value: str) -> str:
    """A federated token file: read here, so that a bad one stops the run before anything is sent."""
    try:
        with open(readable_file(value), "rb") as file:
            token = file.read(1 << 16).strip()
    except OSError as error:
        raise ValueError(f"a readable file ({error.strerror})") from None
    if not token:
        raise ValueError("a file that holds the token (it is empty: write the token just before deploy.py runs)")
    text = token.decode("latin-1")
    if text.startswith("{") and '"value"' in text:  # GitHub's OIDC endpoint answers {"value": "<jwt>", "count": 1}
        raise ValueError("the token itself: it holds GitHub's JSON answer; write its value with: jq -j .value")
    if text.lower().startswith("bearer ") and JWT.fullmatch(text[7:].strip()):
        raise ValueError("the token itself, without 'Bearer ' in front")
    if not JWT.fullmatch(text):
        raise ValueError("a file that holds a JWT (three base64url parts joined by dots; it holds something else)")
    return value


def token_file_warnings(path: str) -> list[str]:
    """azure-identity 1.27.0 sends the file as it is, a trailing newline included; whether Entra ID takes it is
    not documented."""
    with open(path, "rb") as file:
        ends = file.read(1 << 16).endswith((b"\n", b"\r", b" "))
    return (
        [
            "AZURE_FEDERATED_TOKEN_FILE ends with a newline or space, which azure-identity sends as part of the "
            "token and Entra ID may refuse: write it without one (curl ... | jq -j .value > file)"
        ]
        if ends
        else []
    )
