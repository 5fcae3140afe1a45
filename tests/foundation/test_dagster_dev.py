"""`dagster dev -w workspace.yaml` answers GraphQL on 127.0.0.1 and shuts down cleanly on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _graphql(port: int, query: str) -> dict[str, object]:
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_dagster_dev_answers_and_stops(tmp_path: Path) -> None:
    port = _free_port()
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # as `make dev` configures it
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "BRAINFM_ROOT": str(tmp_path)}
    proc = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        # A background process inherits SIGINT as ignored; restore it so dagster dev can be stopped.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 (no threads here)
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        answer: dict[str, object] | None = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = _graphql(port, "{ version repositoriesOrError { __typename } }")
                if (
                    answer.get("data", {}).get("repositoriesOrError", {}).get("__typename")
                    == "RepositoryConnection"
                ):  # type: ignore[union-attr]
                    break
            except OSError:
                pass
            time.sleep(2)
        assert answer is not None, "dagster dev never answered on 127.0.0.1"
        assert answer["data"]["version"]  # type: ignore[index]
        locations = _graphql(
            port, "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
        )
        entries = locations["data"]["workspaceOrError"]["locationEntries"]  # type: ignore[index]
        assert [(e["name"], e["loadStatus"]) for e in entries] == [("brainfm", "LOADED")]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert rc == 0, proc.stdout.read().decode()[-2000:] if proc.stdout else rc
