"""Loaded by every deploy.py the tests start (PYTHONPATH): the process dies loudly on any network
use beyond what DEPLOY_TEST_NETWORK allows ("loopback": 127.0.0.1 and localhost only; "none": nothing)."""

import os
import sys

_ALLOWED = {"loopback": {"127.0.0.1", "localhost", "::1"}, "none": set()}[os.environ.get("DEPLOY_TEST_NETWORK", "none")]


def _guard(event, args):
    if event == "socket.getaddrinfo":
        host = args[0]
    elif event == "socket.connect":
        address = args[1]
        if not isinstance(address, tuple):  # a Unix socket is not the network
            return
        host = address[0]
    else:
        return
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host not in _ALLOWED:
        sys.stderr.write(f"NETWORK GUARD: {event} to {host!r} is not allowed in this test\n")
        sys.stderr.flush()
        os._exit(97)


sys.addaudithook(_guard)
