"""A RabbitMQ cluster and worker "hosts" of the cluster suite's own, on this machine.

- `Network`: a bridge with the services' address (10.x.0.1, a private range nobody else here
  uses) and one network namespace per worker host, joined to it by a veth pair (10.x.0.11,
  .12, ...). `cut(host)`/`heal(host)` take that host's link down and up: its worker sees the
  network vanish, as when a machine's cable is pulled, while every process stays alive.
- `RabbitCluster`: three RabbitMQ nodes (own node names, ports, data folders and Erlang
  cookie) joined into one cluster, listening on the bridge address and on 127.0.0.1.
- Redis for results and records, on the bridge address (see `OwnRedis`).

Everything is removed at the end, on failure too (`close()`); the shared node on 5672 and the
machine's own interfaces are never touched.
"""

from __future__ import annotations

import contextlib
import random
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.chaos.services import RabbitNode


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def _free_subnet() -> int:
    """A second octet for 10.x.0.0/24 that no interface of this machine uses yet."""
    used = ip("-o", "-4", "addr", "show").stdout
    for _ in range(50):
        octet = random.randint(160, 250)
        if f" 10.{octet}." not in used:
            return octet
    raise AssertionError("no free 10.x.0.0/24 range for the cluster suite's network")


class Network:
    """A bridge (the "switch" the broker nodes sit on) and worker hosts as namespaces."""

    def __init__(self, hosts: int) -> None:
        tag = uuid.uuid4().hex[:4]
        self.prefix = f"hxc{tag}"
        octet = _free_subnet()
        self.subnet = f"10.{octet}.0"
        self.bridge = f"{self.prefix}br"
        self.service_address = f"{self.subnet}.1"
        self.hosts = [f"{self.prefix}-h{i}" for i in range(1, hosts + 1)]
        self._made_bridge = False
        self._made: list[str] = []

    def host_address(self, host: str) -> str:
        return f"{self.subnet}.{10 + self.hosts.index(host) + 1}"

    def _link(self, host: str) -> str:
        """The host-side end of the host's veth pair (on the bridge)."""
        return f"{self.prefix}v{self.hosts.index(host) + 1}"

    def create(self) -> Network:
        try:
            ip("link", "add", self.bridge, "type", "bridge")
            self._made_bridge = True
            # A fixed address: a bridge otherwise takes its ports' lowest, which changes.
            ip("link", "set", self.bridge, "address", self._mac(0))
            ip("addr", "add", f"{self.service_address}/24", "dev", self.bridge)
            ip("link", "set", self.bridge, "up")
            for host in self.hosts:
                self._add_host(host)
        except BaseException:
            self.close()
            raise
        return self

    def _add_host(self, host: str) -> None:
        link, inside = self._link(host), f"{self._link(host)}n"
        ip("netns", "add", host)
        self._made.append(host)
        ip("link", "add", link, "type", "veth", "peer", "name", inside)
        ip("link", "set", inside, "netns", host)
        ip("link", "set", link, "master", self.bridge)
        ip("link", "set", link, "up")
        number = self.hosts.index(host) + 1
        ip("-n", host, "link", "set", inside, "address", self._mac(number))
        ip("-n", host, "addr", "add", f"{self.host_address(host)}/24", "dev", inside)
        ip("-n", host, "link", "set", inside, "up")
        ip("-n", host, "link", "set", "lo", "up")
        # Fixed neighbours both ways: a cut link then black-holes packets, as a cable pulled
        # between two switches does, instead of failing them fast (no route to host) once the
        # neighbour entry expires. Only heartbeats can tell.
        address = self.host_address(host)
        ip(
            "neigh",
            "replace",
            address,
            "lladdr",
            self._mac(number),
            "dev",
            self.bridge,
            "nud",
            "permanent",
        )
        ip(
            "-n",
            host,
            "neigh",
            "replace",
            self.service_address,
            "lladdr",
            self._mac(0),
            "dev",
            inside,
            "nud",
            "permanent",
        )

    def _mac(self, number: int) -> str:
        """A locally administered MAC address of this network's own."""
        tag = self.prefix[3:]
        return f"02:{tag[:2]}:{tag[2:4]}:00:00:{number:02x}"

    def run_in(self, host: str) -> list[str]:
        """The command prefix that runs a program on `host`."""
        return ["ip", "netns", "exec", host]

    def cut(self, host: str) -> None:
        ip("link", "set", self._link(host), "down")

    def heal(self, host: str) -> None:
        ip("link", "set", self._link(host), "up")

    def close(self) -> None:
        for host in self._made:
            ip("link", "del", self._link(host), check=False)  # its peer goes with it
            ip("netns", "del", host, check=False)
        self._made = []
        if self._made_bridge:
            ip("link", "del", self.bridge, check=False)
            self._made_bridge = False


class ClusterNode(RabbitNode):
    """One node of `RabbitCluster`: its own name, ports and folder; the cluster's cookie;
    listening on 127.0.0.1 and on the bridge address the worker hosts reach."""

    def __init__(self, base: Path, name: str, cookie: str, listen: str, conf: str) -> None:
        self.listen, self.extra = listen, conf
        super().__init__(base / name, f"{name}@localhost")
        cookie_file = self.base / ".erlang.cookie"
        cookie_file.write_text(cookie)
        cookie_file.chmod(0o400)

    def config(self) -> str:
        return (
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            f"listeners.tcp.2 = {self.listen}:{self.port}\n"
            # guest from the worker hosts' addresses: nothing outside this machine reaches them.
            "loopback_users = none\n"
            "disk_free_limit.absolute = 50MB\n"
            "cluster_partition_handling = pause_minority\n" + self.extra
        )

    def url(self, address: str | None = None) -> str:
        return f"amqp://guest:guest@{address or self.listen}:{self.port}//"


class RabbitCluster:
    """Three nodes joined into one cluster (the first one's), with the same extra config."""

    def __init__(self, listen: str, size: int = 3, conf: str = "") -> None:
        self.base = Path(tempfile.mkdtemp(prefix="hexa-chaos-cluster-"))
        tag = uuid.uuid4().hex[:6]
        cookie = secrets.token_hex(16).upper()
        self.nodes = [
            ClusterNode(self.base, f"hexa-cl-{tag}-{chr(ord('a') + i)}", cookie, listen, conf)
            for i in range(size)
        ]

    def start(self) -> RabbitCluster:
        try:
            with ThreadPoolExecutor(len(self.nodes)) as pool:
                list(pool.map(lambda node: node.start(), self.nodes))
            first = self.nodes[0]
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", first.node)
                node.start_app()
            running = first.ctl("eval", "length(rabbit_nodes:all_running()).").strip()
            assert running == str(len(self.nodes)), f"{running} nodes running"
        except BaseException:
            self.stop()
            raise
        return self

    def url(self, address: str | None = None, first: int = 0) -> str:
        """Every node, comma-separated, starting with node `first` (RABBITMQ_URL's list)."""
        order = self.nodes[first:] + self.nodes[:first]
        return ",".join(node.url(address) for node in order)

    def node_named(self, name: str) -> ClusterNode:
        return next(node for node in self.nodes if node.node == name)

    def leader(self, queue: str) -> ClusterNode:
        """The node that leads `queue` (a quorum queue's leader, a classic queue's home)."""
        for node in self.nodes:
            with contextlib.suppress(AssertionError):
                out = node.ctl("list_queues", "-q", "--no-table-headers", "name", "leader")
                for line in out.splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[0] == queue:
                        return self.node_named(parts[1])
        raise AssertionError(f"queue {queue} not found on any node")

    def connections_from(self, address: str) -> int:
        """AMQP connections the cluster's nodes hold from `address` (a worker host)."""
        count = 0
        for node in self.nodes:
            with contextlib.suppress(AssertionError):  # a stopped node holds none
                out = node.ctl("list_connections", "-q", "--no-table-headers", "peer_host")
                count += sum(1 for line in out.split() if line.strip() == address)
        return count

    def queue_type(self, queue: str) -> str:
        out = self.nodes[0].ctl("list_queues", "-q", "--no-table-headers", "name", "type")
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == queue:
                return parts[1]
        raise AssertionError(f"queue {queue} not found")

    def stop(self) -> None:
        with ThreadPoolExecutor(len(self.nodes)) as pool:
            list(pool.map(lambda node: node.stop(), self.nodes))
        # The shared epmd forgets a stopped node by itself; its files go here.
        shutil.rmtree(self.base, ignore_errors=True)


def wait_until(condition: object, timeout: float, what: str, step: float = 0.05) -> float:
    """Poll `condition()` until true; returns when (monotonic), else fails naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return time.monotonic()
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout}s")
