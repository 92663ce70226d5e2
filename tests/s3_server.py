"""A real S3-protocol server on 127.0.0.1 for the s3:// ingest tests: moto's server mode
(``moto[server]``) in a child process, with request signatures checked (after the three unsigned
calls that create its IAM user, key and policy), so wrong credentials fail as on AWS. The
server's request log tells which objects were downloaded (``GET /BUCKET/KEY``)."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


class S3Server:
    """moto's S3 server on a free loopback port; ``env`` holds the variables a client needs."""

    def __init__(self) -> None:
        self.log_path = Path(tempfile.mkdtemp(prefix="moto-log-")) / "server.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}
        self.url = ""

    def start(self) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                            env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {self.log_path.read_text()[-2000:]}") from None
                time.sleep(0.1)
        self.env = {"AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": "us-east-1", **self._user()}

    def _user(self) -> dict[str, str]:
        import boto3

        iam = boto3.client("iam", endpoint_url=self.url, region_name="us-east-1", aws_access_key_id="setup",
                           aws_secret_access_key="setup")
        iam.create_user(UserName="ingest")
        key = iam.create_access_key(UserName="ingest")["AccessKey"]
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
        iam.put_user_policy(UserName="ingest", PolicyName="s3", PolicyDocument=json.dumps(policy))
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.url, region_name="us-east-1",
                            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"])

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def downloads(self, bucket: str, since: int = 0) -> list[str]:
        """The object keys of ``bucket`` fetched (GET) since the log had ``since`` bytes."""
        with self.log_path.open("rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", "replace")
        pattern = re.compile(rf'GET /{re.escape(bucket)}/([^ ?"]+)[^"]*" 2\d\d')
        return pattern.findall(text)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def s3_or_skip() -> None:
    """Skip (fail under CI=true) when s3fs or moto's server is not installed."""
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
        import s3fs  # noqa: F401
    except ImportError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"the s3 test parts are not installed ({exc}): pip install -e '.[dev]'")
        pytest.skip(f"s3fs or moto[server] not installed ({exc})")


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    s3_or_skip()
    server = S3Server()
    try:
        server.start()
    except (RuntimeError, OSError) as exc:
        server.stop()
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> S3Server:
    """The server's credentials and endpoint in the environment, the machine's AWS files hidden."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    return s3_server
