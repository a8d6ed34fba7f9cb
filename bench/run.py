"""Benchmark: how long users wait, and how hard each tool works, against the local emulator.

    python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt -r bench/requirements.txt
    .venv/bin/python bench/run.py            # about 6 minutes; --runs and --long-runs to change

Runs deploy.py, the tutorial baseline (bench/baseline.py: the same SDK with its defaults) and, when it
is installed, the az CLI, alternating, for provisioning delays of about 5 s and 20 s with no Retry-After
(like real ACI). Per run: launch to the PUT arriving, Azure's outcome to process exit (detection
latency), wall time, requests, requests per second while waiting, and peak memory. Writes
bench/results.md and bench/results.png.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.emulator import Emulator  # noqa: E402

METRICS = {  # key: (column title, format)
    "launch_to_put": ("launch → PUT (s)", "{:.2f}"),
    "detection": ("outcome → exit (s)", "{:.2f}"),
    "wall": ("wall time (s)", "{:.1f}"),
    "requests": ("requests", "{:.0f}"),
    "waiting_rate": ("requests/s while waiting", "{:.2f}"),
    "peak_mb": ("peak memory (MB)", "{:.0f}"),
}


def tools() -> dict[str, list[str]]:
    found = {
        "deploy.py": [sys.executable, str(ROOT / "deploy.py")],
        "baseline (SDK defaults)": [sys.executable, str(ROOT / "bench" / "baseline.py")],
    }
    if shutil.which("az"):
        found["az CLI"] = [str(ROOT / "bench" / "az_create.sh")]
    else:
        print("az CLI not installed: its runs are skipped", file=sys.stderr)
    return found


def run_once(emulator: Emulator, argv: list[str], name: str) -> dict[str, float]:
    """One deployment as a user starts it, measured from outside the process."""
    emulator.requests.clear()
    env = {**os.environ, **emulator.settings(), "ACI_CONTAINER_GROUP_NAME": name}
    env["REQUESTS_CA_BUNDLE"] = str(emulator.ca_path)
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
        "launch_to_put": put.at - launched,
        "detection": exited - emulator.outcome_at(name),
        "wall": exited - launched,
        "requests": len(emulator.requests),
        "waiting_rate": len(after_put) / (exited - put.at),
        "peak_mb": usage.ru_maxrss / 1024,
    }


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


def markdown(results: dict, dry_runs: list[float], runs: dict[float, int]) -> str:
    lines = [
        "| provisioning delay | tool | " + " | ".join(title for title, _ in METRICS.values()) + " |",
        "|---|---|" + "---:|" * len(METRICS),
    ]
    for (delay, tool), samples in results.items():
        cells = [cell([sample[key] for sample in samples], fmt) for key, (_, fmt) in METRICS.items()]
        lines.append(f"| {delay:g} s | {tool} | " + " | ".join(cells) + " |")
    machine = (
        f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}"
    )
    packages = ", ".join(f"{name} {version(name)}" for name in ("azure-identity", "azure-core",
                                                                 "azure-mgmt-containerinstance", "msal"))  # fmt: skip
    counts = ", ".join(f"{count} runs at {delay:g} s" for delay, count in runs.items())
    lines += [
        "",
        f"Medians, with min-max in brackets; {counts} per tool, alternating. "
        f"`deploy.py --dry-run`: {cell(dry_runs, '{:.2f}')} s over {len(dry_runs)} runs.",
        f"Machine: {machine}; {packages}. Command: `python bench/run.py`.",
    ]
    return "\n".join(lines) + "\n"


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    delays = sorted({delay for delay, _ in results})
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
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(loc="upper left")
    figure.suptitle("deploy.py against the SDK's defaults (local emulator, no Retry-After; median, min-max)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per tool at the 5 s delay (5)")
    parser.add_argument("--long-runs", type=int, default=3, help="runs per tool at the 20 s delay (3)")
    args = parser.parse_args()
    commands, results = tools(), {}
    runs = {5.0: args.runs, 20.0: args.long_runs}
    with Emulator() as emulator:
        for delay, count in runs.items():
            emulator.delay = delay
            for run in range(count):
                for tool, argv in commands.items():  # alternating, so drift hits every tool alike
                    sample = run_once(emulator, argv, f"bench-{len(results)}-{run}-{int(delay)}")
                    results.setdefault((delay, tool), []).append(sample)
                    print(f"{delay:g} s  {tool:<24} " + "  ".join(f"{k}={v:.2f}" for k, v in sample.items()),
                          file=sys.stderr, flush=True)  # fmt: skip
    table = markdown(results, dry_run_seconds(5), runs)
    (ROOT / "bench" / "results.md").write_text(table)
    chart(results, ROOT / "bench" / "results.png")
    print(table)


if __name__ == "__main__":
    main()
