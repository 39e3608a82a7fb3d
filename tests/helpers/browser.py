"""Headless Chromium driven over the DevTools protocol: open a page, optionally click a tab, read its text or save a
screenshot. For single-page apps whose tab is not selected by the URL alone (Prefect's flow-run page resets
``?tab=Artifacts`` to Logs while the run loads), and for the screenshots in ``docs/img`` (``python -m
tests.helpers.browser URL FILE [--click Artifacts]``). Local network only: every other host resolves to nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.helpers.processes import stop

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--disable-features=MediaRouter,OptimizationHints",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]

CLICK_JS = """(() => {
  const want = %s;
  const els = [...document.querySelectorAll('button, [role=tab], a, li, div, span')]
    .filter(e => e.innerText && e.innerText.trim() === want && e.offsetParent !== null);
  if (!els.length) return false;
  els[els.length - 1].click();
  return true;
})()"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _drive(ws_url: str, url: str, clicks: list[str], wait_s: float, size: tuple[int, int]) -> tuple[str, bytes]:
    import websockets

    async with websockets.connect(ws_url, max_size=64 * 2**20) as ws:
        counter = 0

        async def call(method: str, **params: object) -> dict:
            nonlocal counter
            counter += 1
            await ws.send(json.dumps({"id": counter, "method": method, "params": params}))
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("id") == counter:
                    if "error" in msg:
                        raise RuntimeError(f"{method}: {msg['error']}")
                    return msg.get("result", {})

        await call(
            "Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False
        )
        await call("Page.navigate", url=url)
        await asyncio.sleep(wait_s)
        for click in clicks:
            if click.startswith("js:"):  # a script instead of a text: for controls without text (switches, icons)
                await call("Runtime.evaluate", expression=click[3:], returnByValue=True)
                await asyncio.sleep(wait_s / 2)
                continue
            deadline = time.monotonic() + 30
            while not (await call("Runtime.evaluate", expression=CLICK_JS % json.dumps(click), returnByValue=True))[
                "result"
            ].get("value"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no visible element with the text {click!r} on {url}")
                await asyncio.sleep(1)
            await asyncio.sleep(wait_s)
        text = (await call("Runtime.evaluate", expression="document.body.innerText", returnByValue=True))["result"]
        shot = await call("Page.captureScreenshot", format="png")
        return text.get("value", ""), base64.b64decode(shot["data"])


def open_page(
    url: str, clicks: list[str] | tuple[str, ...] = (), wait_s: float = 8.0, size: tuple[int, int] = (1400, 1000)
) -> tuple[str, bytes]:
    """The visible text and a PNG screenshot of ``url`` after ``wait_s`` seconds (and after clicking, one after the
    other, the visible elements whose text is each of ``clicks``, waiting ``wait_s`` after each; a ``js:...`` entry
    runs that script instead)."""
    if CHROMIUM is None:
        raise RuntimeError("no chromium binary (Debian: apt-get install -y chromium)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as profile:
        cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={port}", "about:blank"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=2) as resp:
                        pages = [t for t in json.load(resp) if t.get("type") == "page"]
                    if pages:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("chromium's DevTools endpoint did not answer")
                time.sleep(0.5)
            return asyncio.run(_drive(pages[0]["webSocketDebuggerUrl"], url, list(clicks), wait_s, size))
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("png", type=Path)
    parser.add_argument("--click", action="append", default=[], help="text of a tab/button to click (repeatable)")
    parser.add_argument("--wait", type=float, default=8.0)
    parser.add_argument("--size", default="1400x1000", help="WIDTHxHEIGHT")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    _, png = open_page(args.url, args.click, args.wait, (width, height))
    args.png.write_bytes(png)


if __name__ == "__main__":
    main()
