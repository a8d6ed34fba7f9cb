"""A stand-in for the Azure CLI, for the tests only. AzureCliCredential runs
`az account get-access-token --output json --resource <ARM> [--tenant T] [--subscription S]`; this prints
what az 2.91.0 prints for it (stdout on success, `ERROR: ...` on stderr and exit 1 otherwise), with a real
token that it gets from the emulator's token endpoint, as a signed-in az gets one from Entra ID.

It proves the argv and the parsing, not what the real az accepts (tests/test_sign_in.py runs the real
az too, where it is installed). Its state (signed in or not, the subscriptions az knows, the service
principal it signed in as) is the JSON file named by AZ_STANDIN_STATE; each call's argv is appended
to the file named by its "calls" key.
"""

import json
import os
import ssl
import sys
import time
import urllib.parse
import urllib.request
from datetime import datetime
from pathlib import Path


def fail(message: str) -> int:
    print(f"ERROR: {message}", file=sys.stderr)
    return 1


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def main(argv: list[str]) -> int:
    state = json.loads(Path(os.environ["AZ_STANDIN_STATE"]).read_text())
    with open(state["calls"], "a") as calls:
        calls.write(json.dumps(argv) + "\n")
    time.sleep(state.get("seconds", 0))
    if argv[:2] != ["account", "get-access-token"]:
        return fail(f"'{' '.join(argv[:2])}' is not in the 'az' command group.")
    if not state.get("signed_in"):
        return fail("Please run 'az login' to setup account.")
    tenant, subscription = option(argv, "--tenant"), option(argv, "--subscription")
    if tenant and subscription:
        return fail("Please specify only one of subscription and tenant, not both")
    if subscription and subscription not in state["subscriptions"]:
        return fail(f"Subscription '{subscription}' not found. Check the spelling and casing and try again.")
    form = {"grant_type": "client_credentials", "client_id": state["client_id"], "client_secret": state["secret"],
            "scope": option(argv, "--resource") + "/.default"}  # fmt: skip
    context = ssl.create_default_context(cafile=os.environ["REQUESTS_CA_BUNDLE"])
    request = urllib.request.Request(state["token_url"], data=urllib.parse.urlencode(form).encode())
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        token = json.load(response)
    expires_on = int(time.time()) + token["expires_in"]
    print(json.dumps({
        "accessToken": token["access_token"],
        "expiresOn": datetime.fromtimestamp(expires_on).strftime("%Y-%m-%d %H:%M:%S.%f"),
        "expires_on": expires_on,
        "subscription": subscription or state["subscriptions"][0],
        "tenant": state["tenant"],
        "tokenType": "Bearer",
    }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
