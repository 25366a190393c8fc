"""Processes under test: started pinned to a core, waited for, measured through ``/proc``, stopped.

Every number the benchmark reports is a same-run comparison between processes on fixed cores (the
system under test alone on CPU 0; load generator and upstreams on CPU 1), so pinning lives here, once.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: The core the proxy under test gets to itself, and the one everything else shares.
PROXY_CPU = 0
LOAD_CPU = 1
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


#: The cores this run may use, read before the orchestrator pins itself to one of them.
CORES = frozenset(os.sched_getaffinity(0))


def pinning_available() -> bool:
    """Two cores or more, and ``taskset`` to pin with: otherwise processes float (and numbers blur)."""
    return {PROXY_CPU, LOAD_CPU} <= CORES and shutil.which("taskset") is not None


def pinned(cpu: int, argv: Sequence[str]) -> list[str]:
    """``argv`` prefixed with ``taskset`` for ``cpu`` when pinning is possible."""
    return ["taskset", "-c", str(cpu), *argv] if pinning_available() else list(argv)


def pin_self(cpu: int) -> None:
    """Keep the orchestrator (and the in-process streaming client) off the proxy's core."""
    if pinning_available():
        os.sched_setaffinity(0, {cpu})


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_tools(*names: str) -> None:
    """Install the Debian packages of missing tools when running as root; otherwise say what to install."""
    missing = [name for name in names if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise SystemExit(
            f"bench needs {', '.join(missing)}: install them (e.g. apt-get install -y {' '.join(missing)})"
        )
    print(f"installing {' '.join(missing)} with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


def tool(name: str) -> str:
    """The absolute path of ``name`` (nginx lives in /usr/sbin, often outside a user's PATH)."""
    found = shutil.which(name) or (f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None)
    if found is None:
        raise SystemExit(f"{name} not found")
    return found


class Service:
    """One long-running process with its output in a log file, so a failure can show why."""

    def __init__(self, name: str, argv: Sequence[str], log_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv),
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )

    @property
    def pid(self) -> int:
        """The process id (``taskset`` execs its command, so this is the program itself)."""
        return self.proc.pid

    def tail(self, lines: int = 30) -> str:
        """The end of the log, for error messages."""
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        """Fail loudly (with its log) if the process died."""
        if self.proc.poll() is not None:
            raise SystemExit(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")

    def wait_http(self, url: str, timeout: float = 30.0, expect: int = 200) -> None:
        """Poll ``url`` until it answers ``expect``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
                if response.status == expect:
                    return
            time.sleep(0.05)
        raise SystemExit(f"{self.name}: {url} did not answer {expect} within {timeout:.0f}s:\n{self.tail()}")

    def wait_port(self, port: int, timeout: float = 30.0) -> None:
        """Poll until something accepts connections on ``port``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                return
            time.sleep(0.05)
        raise SystemExit(f"{self.name}: port {port} not open within {timeout:.0f}s:\n{self.tail()}")

    def pids(self) -> list[int]:
        """This process and its descendants (worker processes count towards memory and CPU)."""
        found = [self.pid]
        for pid in found:
            with contextlib.suppress(OSError):
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
                found.extend(int(child) for child in children)
        return found

    def rss_bytes(self) -> int:
        """Resident memory of the process tree."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_SIZE
        return total

    def cpu_seconds(self) -> float:
        """CPU time of the process tree so far, from the scheduler's nanosecond counters (every thread)."""
        total = 0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for task in Path(f"/proc/{pid}/task").iterdir():
                    with contextlib.suppress(OSError):
                        total += int((task / "schedstat").read_text().split()[0])
        return total / 1e9

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@contextlib.contextmanager
def services() -> Iterator[list[Service]]:
    """A list to register started services in; all are stopped on the way out, newest first."""
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            service.stop()


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used since boot (``/proc/stat``)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    """CPU seconds used by this process and its reaped children (the benchmark's own processes)."""
    me, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def wait_until_quiet(timeout: float, idle_share: float = 0.9) -> float:
    """Wait (up to ``timeout`` seconds) for a 2-second window in which the machine is at least ``idle_share``
    idle; returns the busy share of the last window (other people's work blurs every number)."""
    deadline = time.monotonic() + timeout
    while True:
        busy = machine_busy_seconds()
        time.sleep(2)
        share = (machine_busy_seconds() - busy) / (2 * len(CORES))
        if share <= 1 - idle_share or time.monotonic() >= deadline:
            return share


def python_module(module: str, *args: str) -> list[str]:
    """``python -m module args`` with this interpreter (the project's virtualenv)."""
    return [sys.executable, "-m", module, *args]
