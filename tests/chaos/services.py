"""A RabbitMQ node and a Redis server of the chaos suite's own, on their own ports.

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


class OwnRabbitMQ:
    """A throw-away RabbitMQ node: `stop_app`/`start_app` on it hurt nobody else."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="hexa-chaos-rabbit-"))
        self.node = f"hexa-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.port, self.dist_port = free_port(), free_port()
        (self.base / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(self.base),  # its own Erlang cookie
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "env.conf"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, user: str = "guest", password: str = "guest") -> str:
        return f"amqp://{user}:{password}@127.0.0.1:{self.port}//"

    def start(self) -> OwnRabbitMQ:
        with open(self.base / "server.out", "wb") as out:
            self.proc = subprocess.Popen(
                [_rabbit_tool("rabbitmq-server")],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            wait_port(self.port, timeout=90)  # the AMQP port opens once the node has booted
            self.ctl("await_startup", "--timeout", "60", timeout=70)
        except BaseException:
            self.stop()
            raise
        return self

    def ctl(self, *args: str, timeout: float = 60) -> str:
        done = subprocess.run(
            [_rabbit_tool("rabbitmqctl"), "-n", self.node, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def stop_app(self) -> None:
        self.ctl("stop_app")
        wait_port(self.port, up=False)

    def start_app(self) -> None:
        self.ctl("start_app")
        wait_port(self.port)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(AssertionError, subprocess.TimeoutExpired):
                self.ctl("stop", timeout=30)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
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
