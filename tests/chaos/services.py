"""RabbitMQ nodes and a Redis server of the chaos suite's own, on their own ports.

The shared services on 5672/6379 are never stopped: every fault is injected here. Both are
started as child processes in their own process group and stopped by PID/node name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Self

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 30.0, up: bool = True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), 0.5):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.1)
    raise AssertionError(f"port {port} still {'closed' if up else 'open'} after {timeout}s")


def _rabbit_tool(name: str) -> str:
    tool = RABBIT_BIN / name
    return str(tool) if tool.exists() else (shutil.which(name) or name)


#: RabbitMQ checks `consumer_timeout` on each channel tick, every 60 s by default: once a
#: second on the suite's nodes, so a channel holding a message past the timeout closes promptly.
_ADVANCED_CONFIG = "[{rabbit, [{channel_tick_interval, 1000}]}].\n"


class RabbitNode:
    """A throw-away RabbitMQ node: its own name, ports and folder (its `HOME`, so its own
    Erlang cookie). `stop_app`/`start_app` on it hurt nobody else."""

    def __init__(self, base: Path, node: str) -> None:
        self.base, self.node = base, node
        self.port, self.dist_port = free_port(), free_port()
        base.mkdir(parents=True, exist_ok=True)
        files = {
            "rabbitmq.conf": self.config(),
            "advanced.config": _ADVANCED_CONFIG,
            "enabled_plugins": "[].\n",
            "env.conf": "",
        }
        for name, text in files.items():
            (base / name).write_text(text, encoding="utf-8")
        self.env = {
            **os.environ,
            "HOME": str(base),
            "RABBITMQ_CONF_ENV_FILE": str(base / "env.conf"),
            "RABBITMQ_NODENAME": node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def config(self) -> str:
        """The node's rabbitmq.conf (its listeners first)."""
        return f"listeners.tcp.local = 127.0.0.1:{self.port}\n"

    def start(self) -> Self:
        with open(self.base / "server.out", "wb") as out:
            self.proc = subprocess.Popen(
                [_rabbit_tool("rabbitmq-server")],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_port(self.port, timeout=120)  # the AMQP port opens once the node has booted
            self.ctl("await_startup", "--timeout", "90", timeout=100)
        except BaseException:
            self.stop()
            raise
        return self

    def ctl(self, *args: str, timeout: float = 90) -> str:
        done = subprocess.run(
            [_rabbit_tool("rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(
                f"{self.node}: rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}"
            )
        return done.stdout

    def stop_app(self) -> None:
        self.ctl("stop_app")
        wait_port(self.port, up=False)

    def start_app(self) -> None:
        self.ctl("start_app")
        wait_port(self.port)
        self.ctl("await_startup", "--timeout", "90", timeout=100)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.ctl("stop", timeout=30)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


class OwnRabbitMQ(RabbitNode):
    """The suite's single node, in a folder of its own; `consumer_timeout` in seconds."""

    def __init__(self, consumer_timeout: float | None = None) -> None:
        self.consumer_timeout = consumer_timeout
        base = Path(tempfile.mkdtemp(prefix="hexa-chaos-rabbit-"))
        super().__init__(base, f"hexa-chaos-{uuid.uuid4().hex[:8]}@localhost")

    def config(self) -> str:
        timeout = self.consumer_timeout
        return super().config() + (
            f"consumer_timeout = {int(timeout * 1000)}\n" if timeout is not None else ""
        )

    def url(self, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}//"

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self.base, ignore_errors=True)


class OwnRedis:
    """A password-protected redis-server that can be stopped and started on the same port."""

    def __init__(self, password: str, also_on: str | None = None) -> None:
        self.port = free_port()
        self.password = password
        #: 127.0.0.1, and `also_on` (the cluster suite's bridge address) when given.
        self.addresses = ["127.0.0.1", *([also_on] if also_on else [])]
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0, address: str = "127.0.0.1") -> str:
        return f"redis://:{self.password}@{address}:{self.port}/{db}"

    def start(self) -> OwnRedis:
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                *self.addresses,
                "--save",
                "",
                "--appendonly",
                "no",
                "--requirepass",
                self.password,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        wait_port(self.port, up=False)
