"""Benchmark: how long users wait, and how hard each tool works, against the local emulator.

    python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt -r bench/requirements.txt
    .venv/bin/python bench/run.py            # about 10 minutes; see --help for the run counts

For the az CLI leg, put az on PATH or name it with --az (for example after
`python3 -m venv /tmp/az && /tmp/az/bin/pip install azure-cli`: --az /tmp/az/bin/az).

Runs deploy.py, the tutorial baseline (bench/baseline.py: the same SDK with its defaults) and, when
it is installed, the az CLI, taking turns: with no provisioning delay (start-up alone), and with
delays of 5 s and 20 s and no Retry-After (like real ACI). Per run: launch to the PUT arriving,
Azure's outcome to process exit (detection latency), wall time, requests, requests per second while
waiting, and peak memory. Writes bench/results.md and bench/results.png.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import Emulator  # noqa: E402

METRICS = {  # key: (column title, format)
    "launch_to_first": ("launch → first request (s)", "{:.3f}"),
    "launch_to_put": ("launch → PUT (s)", "{:.3f}"),
    "detection": ("outcome → exit (s)", "{:.2f}"),
    "wall": ("wall time (s)", "{:.1f}"),
    "requests": ("requests", "{:.0f}"),
    "waiting_rate": ("requests/s while waiting", "{:.2f}"),
    "peak_mb": ("peak memory (MB)", "{:.0f}"),
}


def az_setup(az: str, emulator: Emulator, config: Path) -> dict[str, str]:
    """An az CLI profile in config, signed in to the emulator's cloud (once, not timed): its environment."""
    script = Path(az).read_text(errors="replace")
    python = next(word for word in re.findall(r"[/\w.-]*python3?[\w.]*", script) if Path(word).is_file())
    az_version = subprocess.run([python, "-c", "from azure.cli.core import __version__; print(__version__)"],
                                check=True, capture_output=True, text=True).stdout.strip()  # fmt: skip
    # A fresh profile would first look online for a newer az; record that this version was just checked.
    versions = {
        "core": {"local": az_version, "pypi": az_version},
        "azure-cli": {"local": az_version, "pypi": az_version},
    }
    (config / "versionCheck.json").write_text(json.dumps({"versions": versions, "update_time": str(datetime.now())}))
    env = {"AZURE_CONFIG_DIR": str(config), "AZURE_CORE_COLLECT_TELEMETRY": "no",
           "AZURE_CORE_INSTANCE_DISCOVERY": "false", **guarded(emulator)}  # fmt: skip
    settings = emulator.settings()
    for command in (
        ["cloud", "register", "--name", "Emulator", "--endpoint-resource-manager", emulator.url],
        ["cloud", "set", "--name", "Emulator"],
        ["login", "--service-principal", "--username", settings["AZURE_CLIENT_ID"], "--tenant",
         settings["AZURE_TENANT_ID"], "--password", settings["AZURE_CLIENT_SECRET"], "--output", "none"],
    ):  # fmt: skip
        subprocess.run([az, *command], env={**os.environ, **env}, check=True, capture_output=True)
    return env


def az_create(az: str, name: str, settings: dict[str, str]) -> list[str]:
    """What the az CLI docs show for a group in a subnet pulling as a user-assigned identity."""
    return [az, "container", "create", "--resource-group", settings["AZURE_RESOURCE_GROUP"], "--name", name,
            "--image", settings["ACI_IMAGE"], "--os-type", "Linux", "--cpu", "1", "--memory", "1.5", "--ports", "80",
            "--ip-address", "Private", "--location", settings["AZURE_LOCATION"], "--subnet", settings["ACI_SUBNET_ID"],
            "--assign-identity", settings["ACI_IDENTITY_ID"], "--acr-identity", settings["ACI_IDENTITY_ID"],
            "--output", "none"]  # fmt: skip


def guarded(emulator: Emulator) -> dict[str, str]:
    """Every measured process trusts the emulator and dies on any connection beyond loopback."""
    return {"REQUESTS_CA_BUNDLE": str(emulator.ca_path), "PYTHONPATH": str(ROOT / "tests" / "guard"),
            "DEPLOY_TEST_NETWORK": "loopback"}  # fmt: skip


def tools(emulator: Emulator, az: str | None, az_config: Path) -> dict[str, tuple]:
    """Each tool: a function from the group name to its command line, and its extra environment."""
    python = sys.executable
    found = {
        # --settle 0: the other tools stop at Succeeded too, so that like is compared with like
        "deploy.py": (lambda name: [python, str(ROOT / "deploy.py"), "--settle", "0"], guarded(emulator)),
        "baseline (SDK defaults)": (lambda name: [python, str(ROOT / "bench" / "baseline.py")], guarded(emulator)),
    }
    if az:
        found["az CLI"] = (lambda name: az_create(az, name, emulator.settings()), az_setup(az, emulator, az_config))
    else:
        print("az CLI not found (see --az): its runs are skipped", file=sys.stderr)
    return found


def run_once(emulator: Emulator, tool: tuple, name: str) -> dict[str, float]:
    """One deployment as a user starts it, measured from outside the process."""
    command, extra_env = tool
    argv = command(name)
    emulator.requests.clear()
    env = {**os.environ, **emulator.settings(), "ACI_CONTAINER_GROUP_NAME": name, **extra_env}
    with tempfile.TemporaryFile() as stderr:
        launched = time.monotonic()
        process = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=ROOT / "bench")
        _, status, usage = os.wait4(process.pid, 0)
        exited = time.monotonic()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            stderr.seek(0)
            raise RuntimeError(f"{argv} exited {process.returncode}: {stderr.read().decode()[-2000:]}")
    put = next(record for record in emulator.requests if record.method == "PUT")
    after_put = [record for record in emulator.requests if record.at > put.at]
    return {
        "launch_to_first": emulator.requests[0].at - launched,
        "launch_to_put": put.at - launched,
        "detection": exited - emulator.outcome_at(name),
        "wall": exited - launched,
        "requests": len(emulator.requests),
        "waiting_rate": len(after_put) / (exited - put.at),
        "peak_mb": usage.ru_maxrss / 1024,
    }


# What each request of a run is, by the first part of its path found.
KINDS = [("openid-configuration", "GET openid-configuration (MSAL's discovery of the authority)"),
         ("/token", "POST token (the one sign-in)"), ("/operations/", "GET operation (the status, every 2 s)"),
         ("/containerGroups/", "{method} group"), ("/subscriptions", "{method} account")]  # fmt: skip


def sequence(emulator: Emulator) -> str:
    """The requests of the last run, in the order each kind first came, with how many of each."""
    kinds = [next(kind for part, kind in KINDS if part.lower() in r.path.lower()).format(method=r.method)
             for r in emulator.requests]  # fmt: skip
    return ", ".join(f"{kinds.count(kind)} × {kind}" for kind in dict.fromkeys(kinds))


def dry_run_seconds(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run([sys.executable, str(ROOT / "deploy.py"), "--dry-run", "--env-file", str(ROOT / ".env.example")],
                       check=True, capture_output=True)  # fmt: skip
        times.append(time.monotonic() - started)
    return times


def cell(values: list[float], fmt: str) -> str:
    low, mid, high = min(values), statistics.median(values), max(values)
    return fmt.format(mid) if low == high else f"{fmt.format(mid)} ({fmt.format(low)}-{fmt.format(high)})"


def markdown(results: dict, dry_runs: list[float], runs: dict[float, int], sequences: dict) -> str:
    lines = [
        "| provisioning delay | tool | " + " | ".join(title for title, _ in METRICS.values()) + " |",
        "|---|---|" + "---:|" * len(METRICS),
    ]
    for (delay, tool), samples in results.items():
        cells = [cell([sample[key] for sample in samples], fmt) for key, (_, fmt) in METRICS.items()]
        if not delay:  # nothing to wait for: the rate would only count the final GET
            cells[list(METRICS).index("waiting_rate")] = "-"
        lines.append(f"| {delay:g} s | {tool} | " + " | ".join(cells) + " |")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )
    packages = ", ".join(f"{name} {version(name)}" for name in ("azure-identity", "azure-core",
                                                                 "azure-mgmt-containerinstance", "msal"))  # fmt: skip
    counts = ", ".join(f"{count} runs at {delay:g} s" for delay, count in runs.items())
    lines += [
        "",
        f"Medians, with min-max in brackets; {counts} per tool, in turn (each tool first as often). "
        f"`deploy.py --dry-run`: {cell(dry_runs, '{:.2f}')} s over {len(dry_runs)} runs.",
        f"Machine: {machine}; {packages}. Command: `python bench/run.py`.",
        "",
        "The requests of the last run of each, in the order each kind first came:",
        "",
        *(f"- {delay:g} s, {tool}: {requests}" for (delay, tool), requests in sequences.items()),
    ]
    return "\n".join(lines) + "\n"


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delays = sorted({delay for delay, _ in results if delay})  # the 0 s runs measure start-up only
    names = list(dict.fromkeys(tool for _, tool in results))
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, key, title in ((axes[0], "detection", "Azure's outcome → process exit (s)"),
                             (axes[1], "wall", "wall time (s)")):  # fmt: skip
        width = 0.8 / len(names)
        for index, tool in enumerate(names):
            values = [[sample[key] for sample in results[(delay, tool)]] for delay in delays]
            medians = [statistics.median(v) for v in values]
            errors = [
                [m - min(v) for m, v in zip(medians, values, strict=True)],
                [max(v) - m for m, v in zip(medians, values, strict=True)],
            ]
            xs = [i + (index - (len(names) - 1) / 2) * width for i in range(len(delays))]
            bars = axis.bar(xs, medians, width, yerr=errors, capsize=4, label=tool)
            axis.bar_label(bars, fmt="%.1f", padding=2, fontsize=9)
        axis.set_xticks(range(len(delays)), [f"provisioning {d:g} s" for d in delays])
        axis.set_title(title)
        axis.set_ylim(top=axis.get_ylim()[1] * 1.12)  # room for the value labels
        axis.grid(axis="y", alpha=0.3)
    figure.legend(*axes[0].get_legend_handles_labels(), loc="lower center", ncol=len(names), frameon=False)
    figure.suptitle("deploy.py against the SDK's defaults (local emulator, no Retry-After; median, min-max)")
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--startup-runs", type=int, default=15, help="runs per tool with no delay (15)")
    parser.add_argument("--runs", type=int, default=5, help="runs per tool at the 5 s delay (5)")
    parser.add_argument("--long-runs", type=int, default=3, help="runs per tool at the 20 s delay (3)")
    parser.add_argument("--az", default=shutil.which("az"), help="the az CLI to compare (default: az on PATH)")
    args = parser.parse_args()
    results: dict = {}
    sequences: dict = {}
    serial = itertools.count()
    phases = ((0.0, args.startup_runs), (5.0, args.runs), (20.0, args.long_runs))
    runs = {delay: count for delay, count in phases if count}
    with Emulator() as emulator, tempfile.TemporaryDirectory(prefix="bench-az-") as az_config:
        commands = tools(emulator, args.az, Path(az_config))
        for delay, count in runs.items():
            emulator.delay = delay
            for run in range(count):
                names = list(commands)
                for tool in names[run % len(names) :] + names[: run % len(names)]:  # each tool leads in turn
                    sample = run_once(emulator, commands[tool], f"bench-{next(serial)}")
                    results.setdefault((delay, tool), []).append(sample)
                    sequences[(delay, tool)] = sequence(emulator)
                    print(f"{delay:g} s  {tool:<24} " + "  ".join(f"{k}={v:.2f}" for k, v in sample.items()),
                          file=sys.stderr, flush=True)  # fmt: skip
                    time.sleep(0.5)  # let the machine settle, so no run starts in the wake of the last
    table = markdown(results, dry_run_seconds(5), runs, sequences)
    (ROOT / "bench" / "results.md").write_text(table)
    chart(results, ROOT / "bench" / "results.png")
    print(table)


if __name__ == "__main__":
    main()
