"""What every emulated service shares: recorded requests, injected faults, timestamps, ARM's error shape."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone


@dataclass
class Fault:
    """The next request matching method and path (a regex) gets this answer instead of the real one."""

    method: str
    path: str = ".*"
    status: int = 500
    code: str = "InternalServerError"
    message: str = "The emulator was told to fail this request."
    headers: dict = field(default_factory=dict)
    drop: bool = False  # close the connection without any answer
    times: int = 1


@dataclass
class Record:
    method: str
    path: str
    query: dict
    status: int
    body: object = None
    at: float = field(default_factory=time.monotonic)  # when the answer was ready


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _now() -> str:
    return _stamp(datetime.now(timezone.utc))


def arm_error(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}
