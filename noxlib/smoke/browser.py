"""The smoke test's browser pass: the pages in a real headless Chromium, or one line saying why not.

Run by the same command line as the HTTP checks (python 3.9+, see noxlib/smoke/checks.py); only
this part needs a package (playwright, installed by `nox -s smoke`) and a Chromium already on the
machine: it is never downloaded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from noxlib.core.errors import first_line
from noxlib.smoke.checks import SNIPPET_LENGTH, CheckFailed, Report, Target, line


@dataclass(frozen=True)
class BrowserPage:
    name: str  # also the screenshot's file name
    path: str
    testid: str  # the element that shows data from the API
    expected_text: str | None = None
    toggles: bool = False


BROWSER_PAGES = (
    BrowserPage("dashboard", "/", "health-status", expected_text="healthy"),
    BrowserPage("ping-pong", "/ping-pong", "ping-state", toggles=True),
    BrowserPage("reconciliation", "/reconciliation", "stats-matched"),
)
CHROMIUM_NAMES = ("chromium", "chromium-browser")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium(environ: dict[str, str] | None = None) -> tuple[str | None, str]:
    """(path, "") when a Chromium is found; (None, why) when not. A bad CHROMIUM_PATH is an error."""
    env = os.environ if environ is None else environ
    explicit = env.get("CHROMIUM_PATH", "").strip()
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise CheckFailed(f"CHROMIUM_PATH={explicit} is not an executable file; fix it or unset it")
        return explicit, ""
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found, ""
    return None, "no Chromium found (set CHROMIUM_PATH, or put chromium or chromium-browser on PATH)"


def isolation_flags(base_url: str) -> list[str]:
    """Let the browser resolve only loopback and the host under test.

    Every other name, and IP literals too, resolve to nothing, so a page that pulls in a third
    party fails here (as a console error) instead of quietly reaching the internet. Checked with
    Chromium 156: a page on this machine's non-loopback address fails with ERR_NAME_NOT_RESOLVED.
    """
    host = urllib.parse.urlsplit(base_url).hostname or "127.0.0.1"
    excluded = ["127.0.0.1"] + ([host] if host != "127.0.0.1" else [])
    return ["--host-resolver-rules=MAP * ~NOTFOUND, " + ", ".join(f"EXCLUDE {name}" for name in excluded)]


def visit(context: Any, expect: Any, target: Target, spec: BrowserPage, mode: str, screenshots: Path) -> str:
    """Open one page, wait for its API data, toggle where asked, screenshot; fail on console errors."""
    errors: list[str] = []
    tab = context.new_page()
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    url = target.url(spec.path)
    step = "loading the page"  # named in the failure: "Locator expected to be visible" alone says little
    try:
        response = tab.goto(url, wait_until="load")
        if response is None or response.status != 200:
            raise CheckFailed(f"{url} answered HTTP {response.status if response else 'nothing'}")
        shown = tab.get_by_test_id(spec.testid)
        step = f"waiting for data-testid={spec.testid}" + (
            f" to read {spec.expected_text!r}" if spec.expected_text else ""
        )
        if spec.expected_text:
            expect(shown).to_have_text(spec.expected_text)
        else:
            expect(shown).to_be_visible()
        detail = f"{spec.testid} {shown.inner_text().strip()}"
        if spec.toggles and mode != "prod":
            before = shown.inner_text().strip()
            button = tab.get_by_test_id("toggle-button")
            step = f"clicking Toggle and waiting for {spec.testid} to change from {before}"
            button.click()
            expect(shown).not_to_have_text(before)
            after = shown.inner_text().strip()
            step = f"clicking Toggle again and waiting for {spec.testid} to read {before}"
            expect(button).to_be_enabled()
            button.click()
            expect(shown).to_have_text(before)
            detail = f"clicked Toggle: {before} -> {after} -> {before}"
        step = "taking the screenshot"
        screenshots.mkdir(parents=True, exist_ok=True)
        tab.screenshot(path=str(screenshots / f"{spec.name}.png"), full_page=True)
    except CheckFailed:
        raise
    except Exception as error:  # playwright's timeouts and failed expectations, on one line
        raise CheckFailed(f"{url}: {step}: {first_line(error)}") from None
    finally:
        tab.close()
    if errors:
        raise CheckFailed(f"{url}: {len(errors)} console error(s), first: {errors[0][:SNIPPET_LENGTH]}")
    return detail + f"; {spec.name}.png"


def run_browser(target: Target, mode: str, screenshots: Path, report: Report, out: Callable[[str], None]) -> None:
    """The pages in a real headless Chromium — or one line saying why not, never silence."""
    try:
        chromium, why = find_chromium()
    except CheckFailed as failure:
        report.failed += 1
        report.failures.append(f"browser: {failure}")
        out(f"  FAIL  browser: {failure}")
        return
    if chromium is None:
        out(f"  browser: skipped, {why}; HTTP checks only")
        return
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        out("  browser: skipped, playwright is not installed for this Python (nox -s smoke has it); HTTP checks only")
        return
    for spec in BROWSER_PAGES:
        (screenshots / f"{spec.name}.png").unlink(missing_ok=True)
    expect.set_options(timeout=target.timeout * 1000)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="smoke-chromium-") as profile:
        try:
            # A fresh profile every run: no cookies, cache or service worker from an earlier one.
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=[*CHROMIUM_FLAGS, *isolation_flags(target.base_url)],
            )
        except Exception as error:  # a Chromium too old or broken for playwright: one clear line
            report.failed += 1
            report.failures.append(f"browser: {chromium} did not start: {first_line(error)}")
            out(f"  FAIL  browser: {chromium} did not start: {first_line(error)}")
            return
        context.set_default_timeout(target.timeout * 1000)
        try:
            for spec in BROWSER_PAGES:
                name = f"browser {spec.name}"
                started = time.perf_counter()
                try:
                    detail = visit(context, expect, target, spec, mode, screenshots)
                except CheckFailed as failure:
                    report.failed += 1
                    report.failures.append(f"{name}: {failure}")
                    elapsed = (time.perf_counter() - started) * 1000
                    out(line("FAIL", name, f"open {spec.path}", "-", elapsed, str(failure)))
                else:
                    report.passed += 1
                    elapsed = (time.perf_counter() - started) * 1000
                    out(line("ok", name, f"open {spec.path}", "", elapsed, detail))
        finally:
            context.close()
    out(f"  screenshots in {screenshots}")
