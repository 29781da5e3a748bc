"""A private Docker daemon for tests: Debian's dockerd with its own data root, exec root, socket
and pid file under a temporary directory, plus a local busybox image made with `docker import`
(there is no registry access here).

The image holds /bin/busybox (busybox-static) and /www/index.html; `busybox httpd -f -p 8080 -h
/www` serves that page. When dockerd or busybox-static is missing and we are root, they are
installed with apt-get (docker.io busybox-static). As root the daemon gets a bridge of its own
(no iptables rules), so it never touches docker0 or another dockerd's networking.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import httpx

TEST_IMAGE = "proxyd-test-busybox:1"
INDEX_HTML = "hello from the busybox container\n"
HTTPD = ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]


def ensure_docker_installed() -> None:
    """Install docker.io and busybox-static with apt-get when missing (root only)."""
    missing = [b for b in ("dockerd", "docker") if shutil.which(b) is None]
    busybox = _busybox_path()
    if not missing and busybox is not None:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise RuntimeError(
            "the Docker tests need dockerd and busybox-static: "
            "sudo apt-get install -y docker.io busybox-static"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "docker.io", "busybox-static"], check=True, env=env
    )


def _busybox_path() -> Path | None:
    for candidate in ("/bin/busybox", "/usr/bin/busybox"):
        path = Path(candidate)
        if path.exists():
            return path
    return None


class DockerDaemon:
    """dockerd on its own unix socket; stop() ends it (and the containers it runs)."""

    def __init__(self, workdir: Path) -> None:
        ensure_docker_installed()
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.socket = workdir / "docker.sock"
        self.pidfile = workdir / "docker.pid"
        self.log_path = workdir / "dockerd.log"
        self.bridge = _own_bridge()
        network = ["--bridge", self.bridge, "--iptables=false", "--ip-masq=false"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    "dockerd",
                    "--data-root",
                    str(workdir / "data"),
                    "--exec-root",
                    str(workdir / "exec"),
                    "-H",
                    f"unix://{self.socket}",
                    "--pidfile",
                    str(self.pidfile),
                    *(network if self.bridge else []),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._wait_ready(timeout=60)

    @property
    def host(self) -> str:
        """The DOCKER_HOST value for this daemon."""
        return f"unix://{self.socket}"

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        transport = httpx.HTTPTransport(uds=str(self.socket))
        with httpx.Client(transport=transport, base_url="http://docker", timeout=2) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"dockerd exited:\n{self.log_path.read_text()[-3000:]}")
                try:
                    if client.get("/_ping").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"dockerd did not answer:\n{self.log_path.read_text()[-3000:]}")

    def cli(self, *args: str, check: bool = True, timeout: float = 60) -> str:
        """Run the docker CLI against this daemon; return stdout."""
        result = subprocess.run(  # noqa: PLW1510 - checked below
            ["docker", *args],
            env={**os.environ, "DOCKER_HOST": self.host},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr}")
        return result.stdout

    def build_test_image(self, tag: str = TEST_IMAGE) -> str:
        """`docker import` a busybox-static image that serves INDEX_HTML from /www."""
        root = self.workdir / "image"
        (root / "bin").mkdir(parents=True, exist_ok=True)
        (root / "www").mkdir(exist_ok=True)
        busybox = _busybox_path()
        assert busybox is not None
        shutil.copy2(busybox, root / "bin" / "busybox")
        (root / "www" / "index.html").write_text(INDEX_HTML)
        tarball = self.workdir / "image.tar"
        with tarfile.open(tarball, "w") as tar:
            tar.add(root / "bin", arcname="bin")
            tar.add(root / "www", arcname="www")
            info = tarfile.TarInfo("bin/sh")
            info.type = tarfile.SYMTYPE
            info.linkname = "busybox"
            tar.addfile(info)
        cmd = "CMD [" + ",".join(f'"{part}"' for part in HTTPD) + "]"
        self.cli("import", "-c", cmd, str(tarball), tag)
        return tag

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.bridge:
            subprocess.run(["ip", "link", "del", self.bridge], capture_output=True, check=False)


def _own_bridge() -> str | None:
    """A bridge of our own (with a free 10.213.X.0/24), so this dockerd shares neither docker0
    nor iptables rules with any other dockerd on the machine. None: use Docker's default."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return None
    used = subprocess.run(
        ["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False
    ).stdout
    name = f"pdk{os.getpid() % 100000}"
    for _ in range(20):
        subnet = f"10.213.{random.randrange(256)}"
        if f" {subnet}." in used:
            continue
        steps = [
            ["ip", "link", "add", "name", name, "type", "bridge"],
            ["ip", "addr", "add", f"{subnet}.1/24", "dev", name],
            ["ip", "link", "set", name, "up"],
        ]
        if all(
            subprocess.run(step, capture_output=True, check=False).returncode == 0 for step in steps
        ):
            return name
        subprocess.run(["ip", "link", "del", name], capture_output=True, check=False)
        return None
    return None


def create_service_query(name: str, fields: str = "name status") -> str:
    return (
        "mutation($input: CreateServiceInput!) { createService(input: $input) { " + fields + " } }"
    )


HTTPD_VERBOSE = "/bin/busybox httpd -f -v -p 8080 -h /www"
