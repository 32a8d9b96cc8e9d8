"""Headless Chromium for tests, driven over the Chrome DevTools Protocol with a small
websocket client of our own (stdlib only; no browser downloads).

    with Browser.launch(tmp_path) as b:
        b.goto("http://127.0.0.1:8000/status")
        b.eval("document.title")
        b.screenshot(tmp_path / "page.png")

``find_chromium()`` installs Debian's ``chromium`` when it is missing and the tests run as
root with apt-get (as CI does, see .ci/run); otherwise the caller skips with the reason.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

NAMES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> tuple[str | None, str]:
    """(path, why not): Chromium's path, installing Debian's package when possible."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found, ""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None, "Chromium is not installed (apt-get install chromium) and cannot be here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "chromium"]
    try:
        subprocess.run(install, env=env, check=True, capture_output=True, timeout=600)
    except (subprocess.SubprocessError, OSError):
        try:  # the package lists may be missing or stale
            update = ["apt-get", "update", "-qq"]
            subprocess.run(update, env=env, check=False, capture_output=True, timeout=300)
            subprocess.run(install, env=env, check=True, capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as exc:
            return None, f"Chromium could not be installed with apt-get: {type(exc).__name__}"
    found = shutil.which("chromium")
    return (found, "") if found else (None, "apt-get installed no chromium binary")


class _WebSocket:
    """Just enough of RFC 6455 for CDP on loopback: text frames, masked from the client."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        u = urlparse(url)
        self.sock = socket.create_connection((u.hostname, u.port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {u.path} HTTP/1.1\r\nHost: {u.hostname}:{u.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("websocket handshake: connection closed")
            head += chunk
        status, _, self.buffer = head.partition(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"websocket handshake refused: {status[:80]!r}")

    def send(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        header = bytes([0x81])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack(">Q", n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        self.sock.sendall(header + mask + masked)

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("websocket closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self) -> str:
        message = b""
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0F
            if opcode == 8:
                raise ConnectionError("websocket closed by the browser")
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def close(self) -> None:
        self.sock.close()


class Browser:
    def __init__(self, proc: subprocess.Popen[bytes], ws: _WebSocket, profile: str) -> None:
        self.proc, self.ws, self.profile = proc, ws, profile
        self._ids = itertools.count(1)

    @classmethod
    def launch(cls, binary: str, width: int = 1200, height: int = 1000) -> Browser:
        profile = tempfile.mkdtemp(prefix="rgw-chromium-")
        port_file = Path(profile) / "DevToolsActivePort"
        proc = subprocess.Popen(  # noqa: S603 - the browser found by find_chromium
            [
                binary,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise RuntimeError("Chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        pages: list[dict[str, Any]] = []
        while not pages:
            pages = [
                t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json()
                if t.get("type") == "page"
            ]  # fmt: skip
            if not pages:
                time.sleep(0.05)
        browser = cls(proc, _WebSocket(pages[0]["webSocketDebuggerUrl"]), profile)
        browser.call("Page.enable")
        browser.call("Runtime.enable")
        return browser

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            shutil.rmtree(self.profile, ignore_errors=True)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        mid = next(self._ids)
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})

    def eval(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 15.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = self.eval(expression)
            except RuntimeError:
                value = None  # mid-navigation: the context was replaced
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited for {expression}")
            time.sleep(0.05)

    def goto(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        self.wait_loaded()

    def wait_loaded(self, path: str | None = None) -> None:
        check = "document.readyState === 'complete'"
        if path is not None:
            check += f" && location.pathname === {json.dumps(path)}"
        self.wait_for(check)

    def text(self) -> str:
        return str(self.eval("document.body.innerText"))

    def screenshot(self, path: Path) -> Path:
        shot = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path


def safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:80]
