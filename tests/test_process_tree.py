"""Issue 20: the parse worker dies with its parent — ``kill -9`` or SIGTERM of ``ingest`` or of
``serve`` (during an upload's job) leaves no process behind (it held the catalog files and the
caller's stdout forever)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc")

#: ``domainrag ingest`` with a loader for ``.stuck`` files that never returns (in the worker),
#: or returns at once for ``.idle``... files it is given before a stuck one (the worker then waits).
BOOT = (
    "import sys, time\n"
    "from typing import ClassVar\n"
    "from domainrag import registry\n"
    "from domainrag.ingest.seams import BaseLoader, DocumentBuilder\n"
    "class Stuck(BaseLoader):\n"
    "    extensions: ClassVar[tuple[str, ...]] = ('.stuck',)\n"
    "    format: ClassVar[str] = 'stuck'\n"
    "    def load(self, path, doc_id):\n"
    "        print('parsing', flush=True)\n"
    "        while True:\n"
    "            time.sleep(0.05)\n"
    "registry.register('domainrag.loaders', 'stuck', Stuck)\n"
    "from domainrag.cli import main; sys.argv = ['domainrag', *sys.argv[1:]]; main()\n"
)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def wait_for(condition, seconds: float = 60.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_an_ingest_leaves_no_parse_worker(tmp_path: Path, sig: signal.Signals) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.stuck").write_text("never parsed")
    env = {**os.environ, "DOMAINRAG_KB": str(tmp_path / "kb"), "DOMAINRAG_CONFIG_DIR": str(tmp_path / "cfg")}
    ingest = subprocess.Popen([sys.executable, "-c", BOOT, "ingest", str(tmp_path / "docs"), "--embedder", "hash:64"],
                              cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    worker: list[int] = []
    try:
        assert ingest.stdout is not None
        line = ingest.stdout.readline()   # the worker prints when it starts parsing
        assert b"parsing" in line, line + ingest.stdout.read()
        worker = children(ingest.pid)
        assert worker, "no parse worker found"
        ingest.send_signal(sig)
        ingest.wait(60)
        assert wait_for(lambda: not any(alive(pid) for pid in worker)), f"orphaned parse worker(s) {worker}"
        assert ingest.stdout.read() is not None   # EOF: nothing holds the caller's stdout any more
    finally:
        for pid in worker:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_killing_a_server_during_an_ingest_job_leaves_no_parse_worker(tmp_path: Path, sig: signal.Signals) -> None:
    import json
    import socket
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DOMAINRAG_CONFIG_DIR": str(tmp_path / "cfg")}
    serve = subprocess.Popen([sys.executable, "-c", BOOT, "serve", "--home", str(tmp_path / "home"), "--port",
                              str(port)], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    worker: list[int] = []
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_for(lambda: _answers(f"{base}/healthz")), "the server did not start"
        create = urllib.request.Request(f"{base}/v1/collections", method="POST", headers={"Content-Type": "application/json"},
                                        data=json.dumps({"name": "c", "settings": {"embedder.model": "hash:64"}}).encode())
        urllib.request.urlopen(create, timeout=30).close()
        upload = urllib.request.Request(f"{base}/v1/collections/c/documents", method="POST",
                                        headers={"Content-Type": "application/json"},
                                        data=json.dumps({"documents": [{"name": "a.stuck", "text": "x"}]}).encode())
        urllib.request.urlopen(upload, timeout=30).close()
        assert serve.stdout is not None
        while b"parsing" not in (line := serve.stdout.readline()):
            assert line, "the server ended before the job started parsing"
        worker = children(serve.pid)
        assert worker, "no parse worker found"
        serve.send_signal(sig)
        serve.wait(60)
        assert wait_for(lambda: not any(alive(pid) for pid in worker)), f"orphaned parse worker(s) {worker}"
    finally:
        for pid in worker:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            serve.kill()
            serve.wait()


def _answers(url: str) -> bool:
    import urllib.request

    try:
        urllib.request.urlopen(url, timeout=5).close()
        return True
    except OSError:
        return False
