"""A module written the seed's way: hand-written dicts, simple and advanced formats."""

from __future__ import annotations

from hexa import Module


def simple(a: int, b: int) -> int:
    return a + b


def fixed(text: str) -> str:
    return text.upper()


async def asynchronous() -> str:
    return "async ok"


class SeedFormatModule(Module):
    @property
    def service(self) -> dict[str, object]:
        return {
            "seed_format_tasks": {
                "simple": simple,
                "fixed": {
                    "task": fixed,
                    "config": {
                        "autoretry_for": (ConnectionError, TimeoutError),
                        "max_retries": 3,
                        "default_retry_delay": 60,
                    },
                },
                "asynchronous": asynchronous,
            },
        }
