"""Separate hosts on one Linux machine: network namespaces joined by veth pairs to one switch.

`Network.create(names)` makes, for one run (names prefixed with a random tag, so runs never meet):
a switch namespace holding a bridge; one namespace per host, each with its own address on a private
/24 and a veth pair whose far end is a port of the switch; and a veth from the root namespace (the
harness and its callers, address .1) into the switch. Nothing is shared between hosts but this
network. A partition takes a host's switch port down (`partition`), `heal` brings it back;
`cut_address`/`restore_address` remove and re-add a secondary address (one service of a host).

Needs root and iproute2 (`ip`); `Network.destroy()` deletes everything it made (also at exit), and
stops any process still inside its namespaces, found by `ip netns pids`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field

_live: list[Network] = []


class NetnsError(RuntimeError):
    """A namespace, link or address could not be made (the message quotes `ip`'s error)."""


def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", *(["-n", netns] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetnsError(f"{' '.join(cmd)}: {done.stderr.strip()}")
    return done.stdout


def available() -> str | None:
    """None when this machine can make hosts; else why not (not root, no iproute2)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    return None


def ensure_iproute2() -> None:
    """Install Debian's iproute2 where it is missing (root only), as a fresh machine may lack it."""
    if shutil.which("ip") is not None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, check=False)
    subprocess.run(["apt-get", "install", "-y", "-qq", "iproute2"], env=env, capture_output=True, check=False)


@dataclass
class NetHost:
    """One host: its namespace, address, switch port and (optional) extra addresses for single services."""

    name: str
    netns: str
    address: str
    port: str  # the veth end plugged into the switch (down = partitioned)
    extra: dict[str, str] = field(default_factory=dict)  # service -> secondary address on this host

    @property
    def launcher(self) -> tuple[str, ...]:
        """The prefix that runs a command on this host (`ip netns exec` execs: the pid is the command's)."""
        return ("ip", "netns", "exec", self.netns)


@dataclass
class Network:
    tag: str
    subnet: str  # e.g. "10.213.57" (a /24)
    switch: str
    root_veth: str
    hosts: dict[str, NetHost]
    partitioned: set[str] = field(default_factory=set)

    @property
    def gateway(self) -> str:
        """The root namespace's address on the switch (where the harness and callers live)."""
        return f"{self.subnet}.1"

    @classmethod
    def create(cls, names: list[str], extra: dict[str, list[str]] | None = None) -> Network:
        """Hosts `names` (in this order: .2, .3, …), each optionally with secondary service addresses."""
        ensure_iproute2()
        why = available()
        if why:
            raise NetnsError(why)
        tag = "sw" + secrets.token_hex(2)
        subnet = f"10.{200 + secrets.randbelow(50)}.{secrets.randbelow(256)}"
        net = cls(tag=tag, subnet=subnet, switch=f"{tag}-sw", root_veth=f"{tag}-r", hosts={})
        _live.append(net)
        try:
            net._build(names, extra or {})
        except BaseException:
            net.destroy()
            raise
        return net

    def _build(self, names: list[str], extra: dict[str, list[str]]) -> None:
        ip("netns", "add", self.switch)
        ip("link", "add", "br0", "type", "bridge", "forward_delay", "0", "stp_state", "0", netns=self.switch)
        ip("link", "set", "br0", "up", netns=self.switch)
        # The root namespace (harness, callers) joins the switch too.
        ip("link", "add", self.root_veth, "type", "veth", "peer", "name", f"{self.tag}-rp")
        ip("link", "set", f"{self.tag}-rp", "netns", self.switch)
        ip("link", "set", f"{self.tag}-rp", "master", "br0", "up", netns=self.switch)
        ip("addr", "add", f"{self.gateway}/24", "dev", self.root_veth)
        ip("link", "set", self.root_veth, "up")
        last = 2
        for k, name in enumerate(names):
            ns, port = f"{self.tag}-h{k}", f"{self.tag}-p{k}"
            ip("netns", "add", ns)
            ip("link", "set", "lo", "up", netns=ns)
            ip("link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            ip("link", "set", port, "netns", self.switch)
            ip("link", "set", port, "master", "br0", "up", netns=self.switch)
            address = f"{self.subnet}.{last}"
            last += 1
            ip("addr", "add", f"{address}/24", "dev", "eth0", netns=ns)
            host = NetHost(name=name, netns=ns, address=address, port=port)
            for service in extra.get(name, []):
                host.extra[service] = f"{self.subnet}.{last}"
                last += 1
                ip("addr", "add", f"{host.extra[service]}/24", "dev", "eth0", netns=ns)
            ip("link", "set", "eth0", "up", netns=ns)
            self.hosts[name] = host
        self._wait_reachable()

    def _wait_reachable(self, timeout_s: float = 10.0) -> None:
        """Bridge ports start in the listening state for a moment; wait until each host answers ARP."""
        deadline = time.monotonic() + timeout_s
        for host in self.hosts.values():
            while time.monotonic() < deadline:
                out = ip("link", "show", host.port, netns=self.switch)
                if "state UP" in out or "LOWER_UP" in out:
                    break
                time.sleep(0.05)

    # ------------------------------------------------------------------ faults
    def partition(self, name: str) -> None:
        """Cut host `name` off the network: its switch port goes down (its own link loses carrier)."""
        ip("link", "set", self.hosts[name].port, "down", netns=self.switch)
        self.partitioned.add(name)

    def heal(self, name: str) -> None:
        ip("link", "set", self.hosts[name].port, "up", netns=self.switch)
        self.partitioned.discard(name)

    def cut_address(self, name: str, service: str) -> None:
        """Remove a service's address from its host: connections to it hang, new ones fail."""
        host = self.hosts[name]
        ip("addr", "del", f"{host.extra[service]}/24", "dev", "eth0", netns=host.netns)

    def restore_address(self, name: str, service: str) -> None:
        host = self.hosts[name]
        ip("addr", "add", f"{host.extra[service]}/24", "dev", "eth0", netns=host.netns, check=False)

    # ------------------------------------------------------------------ cleanup
    def pids(self) -> list[int]:
        """Processes still running inside this network's host namespaces."""
        out: list[int] = []
        for host in self.hosts.values():
            done = subprocess.run(["ip", "netns", "pids", host.netns], capture_output=True, text=True, check=False)
            out += [int(p) for p in done.stdout.split() if p.isdigit()]
        return out

    def destroy(self) -> None:
        """Stop what still runs inside, then delete every namespace and link this network made."""
        leftovers = self.pids()
        for pid in leftovers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for host in self.hosts.values():
            ip("netns", "del", host.netns, check=False)
        ip("link", "del", self.root_veth, check=False)
        ip("netns", "del", self.switch, check=False)
        self.hosts.clear()
        if self in _live:
            _live.remove(self)

    def __enter__(self) -> Network:
        return self

    def __exit__(self, *exc: object) -> None:
        self.destroy()


def _destroy_all() -> None:
    for net in list(_live):
        net.destroy()


atexit.register(_destroy_all)

__all__ = ["NetHost", "NetnsError", "Network", "available", "ensure_iproute2", "ip"]
