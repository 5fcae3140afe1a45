"""A full-page PNG of an HTML report, drawn by headless Chromium (for review, slides and visual checks).

Chromium's ``--screenshot`` captures the window, so the window must be as tall as the page. The height is
measured by Chromium itself in a first run: a temporary copy of the page gets a one-line script that, once
the page has loaded, writes the height of the root element into the DOM, and ``--dump-dom``
prints that DOM. The second run takes the screenshot of the original file at that height. Both runs use only
stable command-line switches (no DevTools protocol client, no PDF tools), and the report itself stays free of
JavaScript. The copy lives in a temporary folder, so the page must be self-contained (the reports of
:mod:`brainfm.evaluation.html_report` are).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_ENV = "BRAINFM_CHROMIUM"
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
MAX_HEIGHT_PX = 32_000  # beyond this a screenshot takes many seconds and GB of memory: split the report
_HEIGHT_ATTRIBUTE = "data-brainfm-height"
# scrollHeight is at least the window's height, so the measuring window is short; the bounding box keeps the
# fractional pixel that scrollHeight rounds away.
_MEASURE_SCRIPT = (
    "<script>addEventListener('load', () => { const root = document.documentElement; root.setAttribute("
    f"'{_HEIGHT_ATTRIBUTE}', Math.ceil(Math.max(root.scrollHeight, root.getBoundingClientRect().height))); }});"
    "</script>"
)
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # containers often have a 64 MB /dev/shm, too small for a tall page
    "--hide-scrollbars",
    "--force-device-scale-factor=1",  # one CSS pixel per PNG pixel, whatever the host's display setting
)


def find_chromium() -> str:
    """The Chromium binary: ``$BRAINFM_CHROMIUM``, else chromium / chromium-browser / google-chrome on PATH."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        if shutil.which(configured) is None:
            raise FileNotFoundError(
                f"{CHROMIUM_ENV}={configured!r} is not an executable: point it at a Chromium binary or unset it"
            )
        return configured
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise FileNotFoundError(
        f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)} on PATH): install Debian's `chromium` "
        f"package (apt-get install chromium), or set {CHROMIUM_ENV} to a Chromium or Chrome binary"
    )


def _run_chromium(binary: str, args: list[str], timeout_s: float) -> str:
    """Run Chromium with a fresh profile; returns its stdout. Kills its whole process group on timeout."""
    with tempfile.TemporaryDirectory(prefix="brainfm-chromium-", ignore_cleanup_errors=True) as profile:
        command = [binary, *_FLAGS, f"--user-data-dir={profile}", *args]
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        try:
            stdout, stderr = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the browser's own child processes go with it
            process.communicate()
            raise TimeoutError(
                f"Chromium did not finish within {timeout_s} s: raise timeout_s, or check that the page loads "
                f"in a browser ({' '.join(command)})"
            ) from None
    if process.returncode != 0:
        raise RuntimeError(f"Chromium exited with {process.returncode}: {stderr.strip()[-2000:]}")
    return stdout


def page_height(html_path: Path, width: int = 1280, timeout_s: float = 60) -> int:
    """The page's full height in CSS pixels when laid out ``width`` pixels wide (measured by Chromium)."""
    html_path = Path(html_path).resolve()
    with tempfile.TemporaryDirectory(prefix="brainfm-measure-") as folder:
        probe = Path(folder) / "page.html"
        # Appended after </html>, the script still runs: the HTML parser moves it into the body.
        probe.write_bytes(html_path.read_bytes() + _MEASURE_SCRIPT.encode("ascii"))
        dom = _run_chromium(
            find_chromium(), [f"--window-size={width},100", "--dump-dom", probe.as_uri()], timeout_s
        )
    measured = re.search(rf'{_HEIGHT_ATTRIBUTE}="(\d+)"', dom)
    if measured is None:
        raise RuntimeError(
            f"Chromium did not report the height of {html_path}: open it in a browser and check that it loads"
        )
    return int(measured.group(1))


def render_png(html_path: Path, png_path: Path, width: int = 1280, timeout_s: float = 60) -> Path:
    """A full-page screenshot of ``html_path``, ``width`` pixels wide, written to ``png_path`` (returned).

    ``timeout_s`` bounds each of the two Chromium runs (measuring, then drawing). Raises FileNotFoundError
    when there is no Chromium or no HTML file, ValueError for a page taller than ``MAX_HEIGHT_PX``.
    """
    html_path, png_path = Path(html_path).resolve(), Path(png_path).resolve()
    if not html_path.is_file():
        raise FileNotFoundError(f"no HTML file at {html_path}: pass the report.html written by Report.write")
    if width < 100:
        raise ValueError(f"width is in pixels and must be at least 100 (1280 is usual), got {width}")
    height = page_height(html_path, width, timeout_s)
    if height > MAX_HEIGHT_PX:
        raise ValueError(
            f"{html_path} is {height} px tall at {width} px wide, over the {MAX_HEIGHT_PX} px limit: "
            "split the report or render it wider"
        )
    png_path.parent.mkdir(parents=True, exist_ok=True)
    png_path.unlink(missing_ok=True)  # so that a stale file cannot pass for this run's output
    _run_chromium(
        find_chromium(),
        [f"--window-size={width},{max(height, 1)}", f"--screenshot={png_path}", html_path.as_uri()],
        timeout_s,
    )
    if not png_path.is_file():
        raise RuntimeError(
            f"Chromium ran but wrote no screenshot to {png_path}: check that the folder is writable"
        )
    return png_path
