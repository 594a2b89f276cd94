"""Every published HTML page works offline: loaded in a real browser from the project's report server, with
every request to anything but 127.0.0.1 aborted, no request fails and the evidence is visible.

The pages are the ones a run publishes: the session's whole-graph run (Data Docs, the selection report)
plus one monitored production period (its Evidently drift report), in a copy of that home so the session's
home stays as the graph left it. The server is started exactly as ``make ui`` / ``make audit`` start it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from mlcomops_assets.lib.offline_html import CSP, external_references
from mlcomops_assets.policy import load_policy
from mlcomops_assets.settings import ProjectPaths
from mlcomops_assets_tests.conftest import monitor_batch, system_chromium

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
PERIOD = "2001"  # a production period of the default data (after data.training_cutoff=2000)
PAGE_TIMEOUT_MS = 30_000
SETTLE_MS = 1_000  # after load: lazy requests (fonts, images a script adds) would start by then


@pytest.fixture(scope="module")
def published_home(default_run, tmp_path_factory) -> Path:
    original, result, _ = default_run
    assert result.success, "the default run must succeed for there to be reports"
    home = tmp_path_factory.mktemp("offline_reports") / "home"
    shutil.copytree(original, home, symlinks=True)
    with monitor_batch(home, PERIOD) as (monitored, _):
        assert monitored.success, [e.event_specific_data.error.message for e in monitored.get_step_failure_events()]
    return home


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(published_home):
    """The publication server of ``make ui`` / ``make audit`` on a free port of 127.0.0.1."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcomops_assets.report_server", "--host", HOST, "--port", str(port)],
        env={**os.environ, "MLCOMOPS_HOME": str(published_home)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection((HOST, port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail(f"report server exited: {process.stdout.read().decode()}")
                if time.monotonic() > deadline:
                    pytest.fail("report server did not answer within 30 s")
                time.sleep(0.1)
        yield f"http://{HOST}:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=system_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
            timeout=30_000,
        )
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class Traffic:
    """What one page asked for, and what went wrong."""

    requests: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)  # aborted: not 127.0.0.1
    failed: list[str] = field(default_factory=list)  # network failures, aborts and HTTP errors
    console_errors: list[str] = field(default_factory=list)  # CSP refusals are reported here
    page_errors: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.blocked + self.failed + self.console_errors + self.page_errors


@pytest.fixture
def open_page(browser, server):
    """Open a published path with everything but 127.0.0.1 aborted; returns (page, traffic)."""
    contexts = []

    def open_(path: str):
        context = browser.new_context(viewport={"width": 1400, "height": 900}, service_workers="block")
        contexts.append(context)
        traffic = Traffic()

        def local_only(route):
            url = route.request.url
            if urlsplit(url).hostname == HOST or url.startswith(("data:", "blob:")):
                route.continue_()
            else:
                traffic.blocked.append(url)
                route.abort()

        context.route("**/*", local_only)
        page = context.new_page()
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.on("request", lambda r: traffic.requests.append(r.url))
        page.on("requestfailed", lambda r: traffic.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and traffic.failed.append(f"{r.url}: HTTP {r.status}"))
        page.on("console", lambda m: m.type == "error" and traffic.console_errors.append(m.text[:300]))
        page.on("pageerror", lambda e: traffic.page_errors.append(str(e)[:300]))
        response = page.goto(f"{server}/{path}", wait_until="load", timeout=60_000)
        assert response is not None and response.status == 200, path
        page.wait_for_timeout(SETTLE_MS)
        return page, traffic

    yield open_
    for context in contexts:
        context.close()


def _html_pages(home: Path) -> list[str]:
    published = ProjectPaths(home).published_dir
    return sorted(p.relative_to(published).as_posix() for p in published.rglob("*.html") if not p.name.startswith("."))


def test_every_published_page_loads_with_zero_failed_requests(published_home, open_page):
    pages = _html_pages(published_home)
    kinds = {p.split("/")[0] for p in pages}
    assert {"data_docs", "batch_reports", "selection"} <= kinds, pages
    measured = {}
    for path in pages:
        page, traffic = open_page(path)
        assert page.inner_text("body").strip(), f"{path} shows nothing"
        assert traffic.problems() == [], (path, traffic)
        measured[path] = len(traffic.requests)
    print(f"{len(pages)} pages, requests per page {measured}, failed 0, blocked 0")


def test_data_docs_index_lists_the_validation_without_javascript(published_home, open_page):
    page, traffic = open_page("data_docs/index.html")
    rows = page.locator("#validation-results tr.validation-row")
    assert rows.count() >= 1
    assert rows.first.is_visible()
    first = rows.first.inner_text()
    assert "raw_data_contract" in first and "passed" in first
    # The row links to a validation page that exists; its markup is in the file, not built by a script.
    href = rows.first.locator("a").get_attribute("href")
    assert (ProjectPaths(published_home).data_docs_dir / href).is_file()
    assert page.locator("script").count() == 0
    assert page.locator('meta[http-equiv="Content-Security-Policy"]').get_attribute("content") == CSP
    assert page.get_by_role("link", name="raw_data_contract").is_visible()  # the suite's page
    assert traffic.problems() == [] and len(traffic.requests) == 1
    print(f"Data Docs index: {rows.count()} validation row(s), {len(traffic.requests)} request(s), failed 0")


def test_validation_page_is_styled_and_complete_offline(published_home, open_page):
    docs = ProjectPaths(published_home).data_docs_dir
    (validation,) = sorted((docs / "validations").rglob("*.html"))
    path = validation.relative_to(ProjectPaths(published_home).published_dir).as_posix()
    page, traffic = open_page(path)
    text = page.inner_text("body")
    policy = load_policy(ProjectPaths(published_home).policy_file)
    assert "raw_data_contract" in text and "Evaluated Expectations" in text
    assert "values must never be null" in text
    for column in policy.data.feature_columns:
        assert page.get_by_role("heading", name=column, exact=True).first.is_visible(), column
    # Styled by the inline stylesheet: badges have a background, status icons are drawn.
    badge = page.locator(".badge").first
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") not in ("rgba(0, 0, 0, 0)", "transparent")
    icon = page.locator(".fa-check-circle").first
    assert icon.bounding_box()["width"] > 0
    # What GX collapses behind "Show more info..." (a Bootstrap script) is shown.
    assert page.get_by_text("Great Expectations Version").is_visible()
    # GX's "Failed Only" filter works without its script: every rule passed, so no result row remains.
    rows = page.locator("tr:has(.fa-check-circle), tr:has(.fa-times)")
    assert rows.count() >= len(policy.data.feature_columns)
    page.get_by_text("Failed Only").click()
    assert not any(rows.nth(i).is_visible() for i in range(rows.count()))
    page.get_by_text("Show All").click()
    assert rows.first.is_visible()
    assert external_references(validation.read_text()) == []
    assert traffic.problems() == []
    print(f"validation page: {rows.count()} results, {len(traffic.requests)} request(s), failed 0")


def test_drift_report_loads_offline_and_stays_offline_when_used(published_home, open_page):
    page, traffic = open_page(f"batch_reports/drift-{PERIOD}.html")
    page.get_by_text("Dataset Drift", exact=True).first.wait_for(state="visible")
    text = page.inner_text("body")
    assert "Drifted Columns" in text
    policy = load_policy(ProjectPaths(published_home).policy_file)
    assert any(column in text for column in policy.data.feature_columns)
    # Its other tab renders from the page's own scripts; still nothing from elsewhere.
    page.get_by_text("Tests", exact=True).first.click()
    page.wait_for_timeout(SETTLE_MS)
    assert traffic.problems() == []
    print(f"drift report: {len(traffic.requests)} request(s), failed 0")


def test_selection_report_loads_offline(published_home, open_page):
    page, traffic = open_page("selection/model_selection.html")
    text = page.inner_text("body")
    assert "Model selection" in text and "ROC AUC" in text
    assert traffic.problems() == []
    print(f"selection report: {len(traffic.requests)} request(s), failed 0")


def test_the_harness_sees_an_external_load(published_home, open_page):
    """Control: a page that does load from elsewhere is caught (aborted and counted), so the zeros above
    are measured, not assumed. The probe page is removed again before any other test can list it."""
    probe = ProjectPaths(published_home).published_dir / "probe" / "external.html"
    probe.parent.mkdir(parents=True, exist_ok=True)
    probe.write_text(
        '<html><head><script src="https://cdn.example.org/lib.js"></script></head>'
        '<body><img src="https://images.example.org/logo.png" alt="logo"><p>probe</p></body></html>'
    )
    try:
        _, traffic = open_page("probe/external.html")
    finally:
        shutil.rmtree(probe.parent)
    assert sorted(urlsplit(u).hostname for u in traffic.blocked) == ["cdn.example.org", "images.example.org"]
    assert len(traffic.failed) == 2 and len(traffic.requests) == 3
