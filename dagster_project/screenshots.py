"""``python -m dagster_project.screenshots OUT_DIR`` (``make screenshots``): the Dagster UI in headless Chromium.

Starts ``dagster-webserver`` on this code location (workspace.yaml) and the instance of ``DAGSTER_HOME`` (the runs
of ``make demo``), opens the global asset lineage, one group's asset graph, center_drift's status per center and
the Markdown metadata (text, an image) of the latest materializations, and saves each page as a PNG file.

Chromium is driven over the Chrome DevTools Protocol with the ``websockets`` client (installed with
dagster-webserver's ``uvicorn[standard]``), written here because neither Playwright nor Selenium is in the
environment and ``chromium --screenshot`` alone can neither wait for a page's data nor open a Markdown dialog.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from websockets.sync.client import ClientConnection, connect

REPO_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_ENV = "BRAINFM_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
WINDOW = (1600, 1000)  # CSS pixels: the screenshots' size
PORT_TAKEN = "address already in use"  # uvicorn's words when another process bound the port first
LOADED = "{ repositoriesOrError { __typename } }"


@dataclass(frozen=True)
class Page:
    """A UI page to capture: its URL path, a text that shows its data arrived, and optionally the metadata key
    whose Markdown to show (on an asset's events page: of its latest materialization). The UI renders short
    Markdown in the table and opens longer Markdown (an inlined image) in a dialog."""

    name: str
    path: str
    wait_for: str
    markdown: str | None = None


PAGES = (
    Page("lineage", "/asset-groups", "operations"),
    Page("ingest_graph", "/locations/brainfm/asset-groups/ingest", "normalized_slices"),
    Page("center_drift_partitions", "/assets/center_drift?view=partitions", "Materialized ("),
    Page("center_drift_summary", "/assets/center_drift?view=events", "summary", markdown="summary"),
    Page("mae_encoder_reconstruction", "/assets/mae_encoder?view=events", "reconstruction", "reconstruction"),
)


@dataclass(frozen=True)
class Shot:
    """A saved screenshot, the visible text (of the Markdown dialog, if one was opened, else of the page), and
    the natural widths (px) of the images decoded there (0: an image that did not load)."""

    page: Page
    png: Path
    text: str
    image_widths: list[int]


def find_chromium() -> str | None:
    """``BRAINFM_CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on PATH."""
    if os.environ.get(CHROMIUM_ENV):
        return os.environ[CHROMIUM_ENV]
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def free_port() -> int:
    """A port the kernel just handed out; another process may still take it first (`webserver` retries)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def graphql(base_url: str, query: str) -> dict[str, Any]:
    """POST one GraphQL query (or mutation) to the webserver; its JSON answer."""
    request = urllib.request.Request(
        f"{base_url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT to the process group (the webserver and its code server), SIGKILL after 30 s."""
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


def _loaded(proc: subprocess.Popen[bytes], base_url: str, log: Path, deadline: float) -> bool:
    """Wait until the code location has loaded; False if the webserver exits or lost its port first."""
    while (
        time.monotonic() < deadline
        and proc.poll() is None
        and PORT_TAKEN not in log.read_text(errors="replace")
    ):
        try:
            if (
                graphql(base_url, LOADED)["data"]["repositoriesOrError"]["__typename"]
                == "RepositoryConnection"
            ):
                return True
        except (OSError, KeyError, TypeError):
            pass
        time.sleep(1)
    return False


@contextmanager
def webserver(
    dagster_home: Path, env: Mapping[str, str] | None = None, timeout_s: float = 240, attempts: int = 3
) -> Iterator[str]:
    """Run ``dagster-webserver -w workspace.yaml`` on 127.0.0.1 (a free port) with ``DAGSTER_HOME`` =
    ``dagster_home`` and ``env`` added; yield its base URL once the code location has loaded; always stop it.

    The community sign-up dialog is marked seen (as its Skip button does) so that it covers no screenshot."""
    executable = Path(sys.executable).parent / "dagster-webserver"
    environ = {**os.environ, **(env or {}), "DAGSTER_HOME": str(dagster_home)}
    logs = tempfile.TemporaryDirectory(prefix="brainfm-webserver-")
    for attempt in range(attempts):
        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        log = Path(logs.name) / f"webserver-{attempt}.log"
        with log.open(
            "wb"
        ) as out:  # a file, not a pipe nobody drains, which would block the server once full
            proc = subprocess.Popen(
                [str(executable), "-w", str(REPO_ROOT / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)],
                cwd=REPO_ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT,
                # A process started in the background inherits SIGINT as ignored: restore it so that it stops.
                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # noqa: PLW1509 (no threads)
                start_new_session=True,
            )  # fmt: skip
        try:
            if _loaded(proc, base_url, log, time.monotonic() + timeout_s):
                graphql(base_url, "mutation { setNuxSeen }")
                yield base_url
                logs.cleanup()
                return
        finally:
            _stop(proc)
        if PORT_TAKEN not in log.read_text(errors="replace"):
            break
    tail = log.read_text(errors="replace")[-3000:]
    logs.cleanup()
    raise RuntimeError(
        f"dagster-webserver did not load the code location on {base_url} within {timeout_s:g} s; its log ends:\n{tail}"
    )


class Chromium:
    """Headless Chromium with one tab, driven over the DevTools protocol (see the module docstring)."""

    def __init__(self, executable: str, timeout_s: float = 30) -> None:
        self._profile = tempfile.TemporaryDirectory(prefix="brainfm-chromium-")
        flags = [
            "--headless", "--disable-gpu", "--hide-scrollbars", "--no-first-run", "--disable-dev-shm-usage",
            "--remote-debugging-port=0", f"--user-data-dir={self._profile.name}",
            f"--window-size={WINDOW[0]},{WINDOW[1]}",
        ]  # fmt: skip
        if os.geteuid() == 0:
            flags.append(
                "--no-sandbox"
            )  # Chromium refuses to start as root with its sandbox (containers, CI)
        self._proc = subprocess.Popen(
            [executable, *flags, "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._ids = itertools.count(1)
        self._stack = ExitStack()
        try:
            self._ws: ClientConnection = self._stack.enter_context(
                connect(self._endpoint(timeout_s), max_size=None)
            )
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
            self.call("Emulation.setDeviceMetricsOverride", width=WINDOW[0], height=WINDOW[1], deviceScaleFactor=1,
                      mobile=False)  # fmt: skip
        except BaseException:
            self.close()
            raise

    def _endpoint(self, timeout_s: float) -> str:
        """The browser's DevTools websocket, from the DevToolsActivePort file Chromium writes into its profile."""
        active = Path(self._profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self._proc.poll() is None:
            lines = active.read_text().split() if active.is_file() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.1)
        raise RuntimeError(
            f"Chromium did not open its DevTools port within {timeout_s:g} s (exit {self._proc.poll()})."
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command (to the tab once attached); its result. Events in between are ignored."""
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params}
        if hasattr(self, "_session"):
            message["sessionId"] = self._session
        self._ws.send(json.dumps(message))
        while True:
            answer = json.loads(self._ws.recv(timeout=60))
            if answer.get("id") == message["id"]:
                if "error" in answer:
                    raise RuntimeError(f"DevTools {method} failed: {answer['error']}")
                return answer["result"]

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the tab (promises awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        return result["result"].get("value")

    def wait(self, expression: str, timeout_s: float) -> bool:
        """Poll until ``expression`` is truthy; False after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.evaluate(f"Boolean({expression})"):
                return True
            time.sleep(0.25)
        return False

    def settle(self, timeout_s: float, quiet_s: float = 1.0) -> None:
        """Wait until the visible text has not changed for ``quiet_s`` (data still loading changes it)."""
        deadline, last, since = time.monotonic() + timeout_s, None, time.monotonic()
        while time.monotonic() < deadline:
            text = self.evaluate("document.body ? document.body.innerText : ''")
            if text != last:
                last, since = text, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.25)

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        self._stack.close()
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._profile.cleanup()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


# The metadata row whose key is KEY (argument 0): its "[Show Markdown]" link clicked if it has one. Returns
# "dialog" (clicked), "inline" (rendered in the table) or "" (no such row).
_SHOW_MARKDOWN = """(key => {
  const row = [...document.querySelectorAll('tr')].find(r => r.cells.length && r.cells[0].innerText.trim() === key);
  if (!row) return '';
  const link = [...row.querySelectorAll('*')].find(
    e => e.childElementCount === 0 && e.textContent.trim() === '[Show Markdown]');
  if (!link) return 'inline';
  link.click();
  return 'dialog';
})(%s)"""
_DIALOG = "document.querySelector('[role=dialog]')"
_IMAGES_DONE = f"[...({_DIALOG} || document).querySelectorAll('img')].every(i => i.complete)"
_IMAGE_WIDTHS = f"[...({_DIALOG} || document).querySelectorAll('img')].map(i => i.naturalWidth)"
_TEXT = f"({_DIALOG} || document.body).innerText"


def capture(browser: Chromium, base_url: str, page: Page, out_dir: Path, timeout_s: float = 60) -> Shot:
    """Open ``page``, wait for its data (and show its Markdown), save ``OUT_DIR/<name>.png``."""
    browser.call("Page.navigate", url=base_url + page.path)
    if not browser.wait(
        f"document.body && document.body.innerText.includes({json.dumps(page.wait_for)})", timeout_s
    ):
        raise TimeoutError(
            f"{page.name}: {page.wait_for!r} did not appear on {base_url + page.path} within {timeout_s:g} s. Does the "
            f"instance hold materializations of every asset shown (run `make demo` first)? The page shows:\n"
            + str(browser.evaluate("document.body.innerText"))[:1000]
        )
    browser.settle(timeout_s)
    if page.markdown:
        shown = browser.evaluate(_SHOW_MARKDOWN % json.dumps(page.markdown))
        if not shown:
            raise LookupError(f"{page.name}: the latest materialization has no metadata {page.markdown!r}.")
        if shown == "dialog":
            browser.wait(_DIALOG, timeout_s)
        browser.wait(_IMAGES_DONE, timeout_s)
        browser.settle(timeout_s)
    png = browser.screenshot(out_dir / f"{page.name}.png")
    return Shot(page, png, browser.evaluate(_TEXT), browser.evaluate(_IMAGE_WIDTHS))


def take_screenshots(
    base_url: str, out_dir: Path, pages: Sequence[Page] = PAGES, chromium: str | None = None
) -> list[Shot]:
    """Capture every page of ``pages`` from the webserver at ``base_url`` into ``out_dir``."""
    executable = chromium or find_chromium()
    if executable is None:
        raise FileNotFoundError(
            f"No Chromium found ({', '.join(CHROMIUM_NAMES)} on PATH): install it (Debian: `apt-get install "
            f"chromium`) or set {CHROMIUM_ENV} to a Chromium or Chrome executable."
        )
    with Chromium(executable) as browser:
        return [capture(browser, base_url, page, out_dir) for page in pages]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.screenshots", description=__doc__)
    parser.add_argument("out_dir", type=Path, help="folder for the PNG files")
    parser.add_argument(
        "--dagster-home",
        type=Path,
        default=os.environ.get("DAGSTER_HOME"),
        help="instance (default: $DAGSTER_HOME)",
    )
    args = parser.parse_args(argv)
    if args.dagster_home is None or not (args.dagster_home / "dagster.yaml").is_file():
        print("Set DAGSTER_HOME (or --dagster-home) to the instance of `make demo`.", file=sys.stderr)
        return 2
    with webserver(args.dagster_home.resolve()) as base_url:
        shots = take_screenshots(base_url, args.out_dir)
    for shot in shots:
        print(f"{shot.page.name}: {shot.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
