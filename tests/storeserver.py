"""A real redis-server for the counter tests: its own port, no persistence, stopped and restarted at will."""

from __future__ import annotations

import pathlib
import shutil
import signal
import socket
import subprocess
import time

import pytest
import redis
import trustme

READY_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class StoreServer:
    """One ``redis-server`` process on a fixed loopback port; ``stop()`` kills it as a crash would."""

    def __init__(self, workdir: pathlib.Path, *, password: str | None = None, tls: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run `make test`, which installs it (tools/ensure-redis)")
        self.binary = binary
        self.workdir = workdir
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.tls_args: list[str] = []
        self.ca_file: pathlib.Path | None = None
        if tls:
            self._issue_certificates()

    def _issue_certificates(self) -> None:
        """A throwaway CA and a certificate for 127.0.0.1: the server speaks TLS only."""
        authority = trustme.CA()
        server = authority.issue_cert("127.0.0.1")
        self.ca_file, cert, key = (self.workdir / name for name in ("ca.pem", "server.pem", "server.key"))
        authority.cert_pem.write_to_path(str(self.ca_file))
        server.cert_chain_pems[0].write_to_path(str(cert))
        server.private_key_pem.write_to_path(str(key))
        self.tls_args = ["--tls-port", str(self.port), "--port", "0", "--tls-cert-file", str(cert)]
        self.tls_args += [
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(self.ca_file),
            "--tls-auth-clients",
            "no",
        ]

    @property
    def url(self) -> str:
        if self.ca_file is not None:
            return f"rediss://127.0.0.1:{self.port}/0?ssl_ca_certs={self.ca_file}"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start (or restart, on the same port) and wait until it answers."""
        if self.running:
            return
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        command += ["--dir", str(self.workdir), *self.tls_args]
        if self.password:
            command += ["--requirepass", self.password]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                with self.client() as client:
                    client.ping()
                return
            except redis.ConnectionError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"redis-server did not start on port {self.port}")
                time.sleep(0.02)

    def stop(self) -> None:
        """Kill it (SIGKILL: no goodbye to clients) and wait until it is gone."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing answers, like a hung store."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        """A plain synchronous client, for a test to look at keys directly."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            decode_responses=True,
            socket_timeout=5,
            ssl=self.ca_file is not None,
            ssl_ca_certs=None if self.ca_file is None else str(self.ca_file),
        )

    def flush(self) -> None:
        with self.client() as client:
            client.flushall()
