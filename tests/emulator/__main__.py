"""python -m tests.emulator: run deploy.py against the emulator once (--demo), or serve until Ctrl-C."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from tests.emulator import ROOT, Emulator
from tests.emulator.aci import OUTCOMES
from tests.emulator.worlds import BREAKS, SIGN_IN, federated_token, sign_in


def demo(emulator: Emulator) -> int:
    """Run deploy.py once against the emulator, exactly as a user would, signed in with a federated token
    (no secret anywhere); its exit code."""
    with tempfile.TemporaryDirectory(prefix="aci-demo-") as folder:
        settings = {**emulator.settings(), "AZURE_FEDERATED_TOKEN_FILE": str(federated_token(emulator, Path(folder)))}
        del settings["AZURE_CLIENT_SECRET"]
        env_file = Path(folder) / ".env"
        env_file.write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        print(f"Emulating Entra ID and Azure Resource Manager at {emulator.url} (no Azure account needed).")
        print("$ python deploy.py", flush=True)
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(emulator.ca_path)}  # trust the emulator's own CA
        code = subprocess.run(
            [sys.executable, str(ROOT / "deploy.py"), "--env-file", str(env_file)], env=env
        ).returncode
    if code:
        print("(The commands above name the demo's own env file, gone now: they are what a real run prints.)")
    print(f"deploy.py exited with {code}; the emulator has stopped.")
    return code


def main() -> int:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C stops it, even under nohup or in CI
    parser = argparse.ArgumentParser(description="Local Entra ID + ARM emulator for deploy.py.")
    parser.add_argument("--demo", action="store_true", help="run deploy.py against it once, then stop")
    parser.add_argument("--env-file", default=".env.emulator", help="without --demo: write deploy.py's settings here")
    parser.add_argument("--ca-file", default=".emulator-ca.pem", help="without --demo: write the CA to trust here")
    parser.add_argument("--delay", type=float, default=7.0, help="seconds from PUT to the outcome (7)")
    parser.add_argument("--outcome", choices=OUTCOMES, default="Succeeded", help="how the deployment ends")
    parser.add_argument(
        "--sign-in",
        choices=SIGN_IN,
        default="client-secret",
        help="without --demo: the way the "
        "env file signs in (the Azure CLI: the tests' stand-in az, put first on PATH as printed)",
    )
    parser.add_argument(
        "--break",
        dest="breaks",
        choices=BREAKS,
        action="append",
        default=[],
        help="break the world the way --check finds it (repeatable)",
    )
    args = parser.parse_args()
    with Emulator(delay=args.delay, outcome=args.outcome) as emulator:
        for name in args.breaks:
            BREAKS[name](emulator)
        if args.demo:
            return demo(emulator)
        Path(args.ca_file).write_bytes(emulator.ca_path.read_bytes())
        folder = Path(args.env_file).resolve().parent / ".emulator"  # the token file, or the stand-in az
        folder.mkdir(exist_ok=True)
        settings = sign_in(emulator, args.sign_in, folder)
        Path(args.env_file).write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
        path = f"PATH={folder / 'bin'}:$PATH " if args.sign_in == "azure-cli" else ""
        print(f"Emulating Entra ID and ARM at {emulator.url}; settings written to {args.env_file}", flush=True)
        print("In another shell, trusting the emulator's CA (Ctrl-C here stops it):", flush=True)
        print(f"  {path}REQUESTS_CA_BUNDLE={args.ca_file} python deploy.py --env-file {args.env_file}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
