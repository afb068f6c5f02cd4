"""Headless Chromium for tests: open a page with the network off and say what it requested, which requests
failed, what went to the console, and the value of a JavaScript expression on the loaded page.

It speaks the Chrome DevTools Protocol over a pipe (`--remote-debugging-pipe`: JSON messages ended by a NUL
byte, commands on file descriptor 3, replies and events on 4), so it needs no client library. Any request off
this machine goes to a proxy that does not exist (127.0.0.1:9), so it fails visibly instead of reaching the
network. Chromium is found on PATH (`chromium`, as Debian installs it, .ci/run included) or in
PILLARS_CHROMIUM; without it the test skips, and fails where PILLARS_REQUIRE_CHROMIUM=1 (CI).
"""

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

REQUIRE = "PILLARS_REQUIRE_CHROMIUM"
NAMES = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT_S = 60


def chromium() -> str:
    """The Chromium program, or a skip (a failure with PILLARS_REQUIRE_CHROMIUM=1)."""
    found = os.environ.get("PILLARS_CHROMIUM") or next(filter(None, map(shutil.which, NAMES)), None)
    if found:
        return found
    missing = f"no Chromium on PATH ({', '.join(NAMES)}) nor in PILLARS_CHROMIUM: apt-get install chromium"
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{missing} ({REQUIRE}=1)")
    pytest.skip(missing)


@dataclass
class Visit:
    """What a page did while it loaded."""

    requests: list[str] = field(default_factory=list)  # every URL requested, the page's own included
    failed: list[str] = field(default_factory=list)  # "URL: error" per failed request
    console: list[str] = field(default_factory=list)  # console errors, uncaught exceptions, error log entries
    value: Any = None  # the expression's value


class _DevTools:
    """One connection to a Chromium over its debugging pipe: commands in order, events collected."""

    def __init__(self, commands: int, replies: int) -> None:
        self.commands, self.replies = commands, replies
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            if not select.select([self.replies], [], [], max(0.0, deadline - time.monotonic()))[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self.replies, 1 << 16)
            if not chunk:
                raise ConnectionError("Chromium closed its debugging pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        received: dict[str, Any] = json.loads(message)
        return received

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None) -> Any:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            received = self._receive(deadline)
            if received.get("id") == self.next_id:
                if "error" in received:
                    raise RuntimeError(f"{method}: {received['error']}")
                return received.get("result", {})
            self.events.append(received)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT_S
        while not any(event.get("method") == method for event in self.events):
            self.events.append(self._receive(deadline))


def _above(fd: int) -> int:
    """A copy of `fd` numbered 10 or more (so that moving it to 3 or 4 cannot overwrite the other one)."""
    return fcntl.fcntl(fd, fcntl.F_DUPFD, 10)


@contextlib.contextmanager
def _browser() -> Iterator[_DevTools]:
    """A headless Chromium with a throwaway profile, stopped on the way out."""
    program = chromium()
    commands_read, commands_write = os.pipe()
    replies_read, replies_write = os.pipe()

    def debugging_pipe() -> None:  # in the child, before exec: the pipe ends on 3 and 4 (inheritable)
        ours, theirs = _above(commands_read), _above(replies_write)
        os.dup2(ours, 3)
        os.dup2(theirs, 4)

    with tempfile.TemporaryDirectory(prefix="pillars-chromium-") as profile:
        process = subprocess.Popen(
            [
                program,
                "--headless",
                "--no-sandbox",  # as root in a container
                "--disable-gpu",
                "--remote-debugging-pipe",
                f"--user-data-dir={profile}",
                "--proxy-server=127.0.0.1:9",
                "--proxy-bypass-list=<-loopback>",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,  # the pipes are not inheritable (PEP 446); only their copies on 3 and 4 are
            preexec_fn=debugging_pipe,
        )
        os.close(commands_read)
        os.close(replies_write)
        try:
            yield _DevTools(commands_write, replies_read)
        finally:
            os.close(commands_write)  # Chromium exits when its pipe closes
            os.close(replies_read)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def visit(url: str, expression: str) -> Visit:
    """Open `url` in a new tab, wait for its load event, and evaluate `expression` (its value JSON-able)."""
    with _browser() as browser:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Network", "Runtime", "Log", "Page"):
            browser.send(f"{domain}.enable", session=session)
        browser.events.clear()  # about:blank's own events
        navigated = browser.send("Page.navigate", {"url": url}, session=session)
        if "errorText" in navigated:
            raise RuntimeError(f"{url}: {navigated['errorText']}")
        browser.wait_for("Page.loadEventFired")
        result = browser.send(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=session
        )
        seen = Visit(value=result["result"].get("value"))
        urls: dict[str, str] = {}
        for event in browser.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
                seen.requests.append(params["request"]["url"])
            elif method == "Network.loadingFailed":
                seen.failed.append(f"{urls.get(params['requestId'], '?')}: {params['errorText']}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                seen.console.append(
                    " ".join(str(arg.get("value", arg.get("description"))) for arg in params["args"])
                )
            elif method == "Runtime.exceptionThrown":
                seen.console.append(params["exceptionDetails"].get("text", "exception"))
            elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
                seen.console.append(f"{params['entry'].get('url', '')}: {params['entry']['text']}")
        return seen
