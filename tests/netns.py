"""A few hosts on this machine for tests: network namespaces on a bridge.

The host's end of the bridge routes between the namespaces and the Docker
bridge, so a function container (on the host's daemon, on its bridge
network) reaches a worker's Runtime API at the worker's namespace address.
Docker's FORWARD policy is DROP (and br_netfilter sends bridged frames
through it), hence the ACCEPT rules for our bridge, removed with it.
"""

from __future__ import annotations

import random
import subprocess
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field


def sh(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), check=check, capture_output=True, text=True, timeout=30)


def _free_subnet() -> str:
    """A /24 in 10.200-254.x.0 that no route of this host uses."""
    routes = sh("ip", "-4", "route").stdout
    for _ in range(100):
        prefix = f"10.{random.randint(200, 254)}.{random.randint(0, 255)}"
        if f"{prefix}." not in routes:
            return prefix
    raise RuntimeError("no free 10.x subnet")


@dataclass
class Net:
    tag: str = field(default_factory=lambda: uuid.uuid4().hex[:6])
    prefix: str = field(default_factory=_free_subnet)
    hosts: dict[str, str] = field(default_factory=dict)  # name -> namespace address
    _rules: list[list[str]] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"lfb{self.tag}"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"

    def ns(self, name: str) -> str:
        return f"lf-{self.tag}-{name}"

    def create(self) -> Net:
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")
        for rule in (["-i", self.bridge], ["-o", self.bridge]):
            sh("iptables", "-I", "FORWARD", *rule, "-j", "ACCEPT")
            self._rules.append(rule)
        return self

    def add_host(self, name: str) -> str:
        """A namespace with one address on the bridge and a default route
        through the host; answers the address."""
        n = len(self.hosts) + 2
        address = f"{self.prefix}.{n}"
        ns, host_end = self.ns(name), f"lfv{self.tag}{n}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "link", "set", host_end, "master", self.bridge, "up")
        self.exec(name, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
        self.exec(name, "ip", "link", "set", "eth0", "up")
        self.exec(name, "ip", "link", "set", "lo", "up")
        self.exec(name, "ip", "route", "add", "default", "via", self.gateway)
        self.hosts[name] = address
        return address

    def exec(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return sh("ip", "netns", "exec", self.ns(name), *args, check=check)

    def prefix_args(self, name: str) -> Sequence[str]:
        """What runs a command inside host `name`."""
        return ["ip", "netns", "exec", self.ns(name)]

    def partition(self, name: str, peer: str) -> None:
        """Drop everything between `name` and `peer`, inside `name`."""
        for chain, flag in (("INPUT", "-s"), ("OUTPUT", "-d")):
            self.exec(name, "iptables", "-A", chain, flag, self.hosts[peer], "-j", "DROP")

    def heal(self, name: str) -> None:
        for chain in ("INPUT", "OUTPUT"):
            self.exec(name, "iptables", "-F", chain)

    def destroy(self) -> None:
        for name in list(self.hosts):
            sh("ip", "netns", "del", self.ns(name), check=False)
        for rule in self._rules:
            sh("iptables", "-D", "FORWARD", *rule, "-j", "ACCEPT", check=False)
        sh("ip", "link", "del", self.bridge, check=False)
