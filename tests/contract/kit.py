"""Helpers to run the contract kit the way a supplier does: pytest in a subprocess, a real
gateway server on loopback, a side environment to install adaptor packages into."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import yaml

from repairs_gateway_sdk.testing.backend import free_port

REPO = Path(__file__).resolve().parents[2]
ADAPTORS = REPO / "adaptors"


def contract_config(adaptor: str) -> Path:
    """An in-tree adaptor's contract configuration: in its own folder, like any package's."""
    return ADAPTORS / adaptor / "contract.yaml"


def kit_args(python: str = sys.executable) -> list[str]:
    # heavy plugins the suites do not use are left out to keep the nested runs quick
    cmd = [python, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs"]
    cmd += ["-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:respx"]
    # once pyproject registers the pytest11 entry point, -p would register it twice
    if not any(ep.value == "contract_tests.plugin" for ep in entry_points(group="pytest11")):
        cmd += ["-p", "contract_tests.plugin"]
    return cmd


def run_kit(
    *args: str,
    python: str = sys.executable,
    cwd: Path = REPO,
    timeout: float = 300,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}, **(env or {})}
    return subprocess.run(  # noqa: S603 - our interpreter, our arguments
        [*kit_args(python), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def output(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@dataclass
class Gateway:
    base_url: str
    key: str
    council: str


def demo_config_dir(target: Path) -> Path:
    """The demo council (CSV fallback) with its files, self-contained in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    demo = yaml.safe_load((REPO / "deploy" / "config" / "demo.yaml").read_text())
    demo["mappings"] = "sor.csv"
    (target / "demo.yaml").write_text(yaml.safe_dump(demo, sort_keys=False))
    (target / "sor.csv").write_text((REPO / "mappings" / "examples" / "demo-sor.csv").read_text())
    (target / "demo-properties.csv").write_text(
        (REPO / "deploy" / "config" / "demo-properties.csv").read_text()
    )
    return target


@contextmanager
def served_gateway(
    config_dir: Path, data_dir: Path, council: str, python: str = sys.executable
) -> Iterator[Gateway]:
    """``repairs-gateway serve`` on a free loopback port, with an API key for ``council``."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
        "GATEWAY_DATA_DIR": str(data_dir),
        "GATEWAY_CONFIG_DIR": str(config_dir),
        "GATEWAY_SECRET_KEY": "contract-test-secret",
        "GATEWAY_LOG_LEVEL": "warning",
    }
    env.pop("DATABASE_URL", None)
    cli = [python, "-c", "from gateway.cli import main; main()"]
    key = (
        subprocess.run(  # noqa: S603
            [*cli, "keys", "create", "contract", "--council", council, "--role", "admin"],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    port = free_port()
    log = (data_dir / "serve.log").open("w")
    proc = subprocess.Popen(  # noqa: S603
        [*cli, "serve", "--config-dir", str(config_dir), "--port", str(port)],
        env=env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2):  # noqa: S310
                    break
            except urllib.error.HTTPError:
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        "gateway did not start:\n" + (data_dir / "serve.log").read_text()
                    ) from None
                time.sleep(0.1)
        yield Gateway(base, key, council)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()


def can_build_wheels() -> bool:
    try:
        import setuptools

        major, minor = (int(x) for x in setuptools.__version__.split(".")[:2])
        if (major, minor) >= (70, 1):
            return True
        import wheel  # noqa: F401
    except (ImportError, ValueError):
        return False
    return True


@dataclass
class SideEnv:
    """A throw-away virtual environment that sees everything installed in the project's
    environment (through a .pth file) and receives the packages a test installs."""

    root: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    def install(self, source: Path) -> None:
        done = subprocess.run(  # noqa: S603
            [
                self.python,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--disable-pip-version-check",
                "--no-input",
                str(source),
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, output(done)


def make_side_env(root: Path) -> SideEnv:
    subprocess.run(  # noqa: S603
        [sys.executable, "-m", "venv", "--without-pip", str(root)], check=True, timeout=120
    )
    purelib = sysconfig.get_paths()["purelib"]
    side = SideEnv(root)
    side_lib = subprocess.run(  # noqa: S603
        [side.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    Path(side_lib, "_repairs_gateway_parent.pth").write_text(
        f"import site; site.addsitedir({purelib!r})\n"
    )
    return side
