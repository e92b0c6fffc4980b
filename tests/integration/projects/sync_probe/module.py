"""Sync tasks with time limits: only pools that can stop a running sync task may run them."""

from __future__ import annotations

import time

from hexa import Module


def overrun(seconds: float) -> str:
    time.sleep(seconds)
    return "finished"


def stubborn(seconds: float) -> float:
    """Sleeps through its soft time limit: only the hard limit stops it (a kill)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            time.sleep(0.05)
        except Exception:  # SoftTimeLimitExceeded, ignored on purpose
            continue
    return seconds


class SyncProbeModule(Module):
    @property
    def service(self) -> dict[str, object]:
        return {
            "sync_probe_tasks": {
                "overrun": {"task": overrun, "config": {"timeout": 0.5}},
                "stubborn": {"task": stubborn, "config": {"soft_time_limit": 1, "time_limit": 2}},
            }
        }
