"""`dagster dev -w workspace.yaml` answers GraphQL on 127.0.0.1 and shuts down cleanly on SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dagster_project.screenshots import free_port, graphql

REPO_ROOT = Path(__file__).resolve().parents[2]
LOADED = "{ version repositoriesOrError { __typename } }"
PORT_TAKEN = "address already in use"  # uvicorn's words when another process bound the port first
ATTEMPTS = 3


def _start(port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """dagster dev on 127.0.0.1:`port`, its output in `log` (a file, not a pipe nobody drains, which would block
    it once full)."""
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1",
             "-p", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            # A background process inherits SIGINT as ignored; restore it so dagster dev can be stopped.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 (no threads here)
            start_new_session=True,
        )  # fmt: skip


def _wait_loaded(proc: subprocess.Popen[bytes], port: int, log: Path) -> dict[str, object] | None:
    """The GraphQL answer once the code location has loaded; None if dagster dev exits, loses the port or takes
    longer than 240 s."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None and PORT_TAKEN not in _tail(log):
        try:
            answer = graphql(f"http://127.0.0.1:{port}", LOADED)
            if (
                answer.get("data", {}).get("repositoriesOrError", {}).get("__typename")
                == "RepositoryConnection"
            ):  # type: ignore[union-attr]
                return answer
        except OSError:
            pass
        time.sleep(2)
    return None


def _stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:]


def test_dagster_dev_answers_and_stops(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")  # as `make dev` configures it
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "BRAINFM_ROOT": str(tmp_path)}
    for attempt in range(ATTEMPTS):
        port, log = free_port(), tmp_path / f"dagster-dev-{attempt}.log"
        proc = _start(port, env, log)
        try:
            answer = _wait_loaded(proc, port, log)
            locations = (
                graphql(
                    f"http://127.0.0.1:{port}", "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus } } } }"
                )
                if answer
                else None
            )
        finally:
            rc = _stop(proc)
        if answer or PORT_TAKEN not in _tail(log):
            break
    assert answer is not None, (
        f"dagster dev never loaded the code location on 127.0.0.1:{port}:\n{_tail(log)}"
    )
    assert answer["data"]["version"]  # type: ignore[index]
    entries = locations["data"]["workspaceOrError"]["locationEntries"]  # type: ignore[index]
    assert [(e["name"], e["loadStatus"]) for e in entries] == [("brainfm", "LOADED")]
    assert rc == 0, _tail(log)
