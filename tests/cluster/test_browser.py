"""JupyterLab in a real browser, as a new user meets it: Debian's headless Chromium driven by Playwright (its
executable_path; Playwright's own browser download is not used). It logs in (refused without the token), opens
a fresh copy of the getting-started notebook, runs all cells and sees the Spark job progress under a cell, then
opens the Spark UI (executors and their log links), the launcher entries and MLflow's run, all through the proxy. No
request may leave JupyterLab's origin. Screenshots go to .cache/screenshots/ (git-ignored); a failing step saves
FAILED-<step>.png."""

from __future__ import annotations

import os
import re
import uuid
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.cluster.conftest import compose, recorded_egress
from tests.conftest import CHROMIUM, CHROMIUM_ARGS, ROOT

JUPYTER = "http://127.0.0.1:8888"
SHOTS = ROOT / ".cache" / "screenshots"
EXAMPLE = os.environ.get("MLRT_BROWSER_NOTEBOOK", "/opt/mlrt/examples/00-getting-started.ipynb")
RUN_TIMEOUT_MS = 5 * 60 * 1000


@pytest.fixture(scope="module")
def notebook(token):
    """The image's getting-started notebook as a fresh copy in the workspace (the user's examples/ may be edited).
    Afterwards its kernel is shut down (the notebook keeps its session, and the cluster's cores, for the user) and
    the copy deleted."""
    name = f"browser-test-{uuid.uuid4().hex[:8]}.ipynb"
    compose("exec", "-T", "jupyter", "cp", EXAMPLE, f"/home/mlrt/work/{name}", timeout=60)
    yield name
    auth = {"Authorization": f"token {token}"}
    for session in requests.get(f"{JUPYTER}/api/sessions", headers=auth, timeout=30).json():
        if session["path"] == name:
            requests.delete(f"{JUPYTER}/api/sessions/{session['id']}", headers=auth, timeout=60)
    compose("exec", "-T", "jupyter", "rm", "-f", f"/home/mlrt/work/{name}", check=False, timeout=60)


@pytest.fixture(scope="module")
def browser_page(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: run `make test-host-tools` (installs Debian's) or set MLRT_CHROMIUM")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    requests: list[str] = []
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a new, empty --user-data-dir
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
        )
        context.on("request", lambda request: requests.append(request.url))
        page = context.pages[0] if context.pages else context.new_page()
        page.set_default_timeout(60_000)
        yield page, requests
        context.close()


@contextmanager
def step(page, name: str):
    try:
        yield
    except BaseException:
        page.screenshot(path=SHOTS / f"FAILED-{name}.png", full_page=True)
        raise
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def test_workspace_in_a_browser(browser_page, token, notebook):
    """The whole visit runs under the no-call-home recording (tests/cluster/conftest.py: recorded_egress): the
    getting-started kernel, MLflow's server and UI, the Spark UIs may not reach beyond the compose network."""
    with recorded_egress() as egress:
        visit(*browser_page, token, notebook)
    assert egress == [], "calls beyond the compose network during the browser visit:\n" + "\n".join(egress)


def visit(page, requests, token, notebook):
    with step(page, "01-login-refused"):
        page.goto(f"{JUPYTER}/lab")
        assert "/login" in page.url, f"JupyterLab without a token did not ask for one: {page.url}"
        page.fill("input[type=password]", "not-the-token")
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_load_state()
        assert "/login" in page.url, "a wrong token was accepted"

    with step(page, "02-login"):
        page.fill("input[type=password]", token)
        page.click("button[type=submit], input[type=submit]")
        page.wait_for_url(re.compile(r".*/lab.*"))
        page.goto(f"{JUPYTER}/lab?reset")  # the launcher, whatever tabs an earlier visit left open
        page.wait_for_selector(".jp-LauncherCard", timeout=120_000)

    with step(page, "03-launcher"):
        cards = page.locator(".jp-LauncherCard").all_inner_texts()
        for title in ("Spark UI", "Spark history", "MLflow", "Spark master"):
            assert any(title == c.strip() for c in cards), f"no launcher entry {title!r} in {cards}"
            card = page.locator(f'.jp-LauncherCard[data-category="mlrt cluster"][title="{title}"]')
            image = card.locator(".jp-LauncherCard-icon").evaluate("e => getComputedStyle(e).backgroundImage")
            icon = re.search(r'url\("([^"]+)"\)', image)
            assert icon, f"no icon on the launcher tile {title!r}: {image}"
            served = page.request.get(icon.group(1))
            assert served.ok and served.headers["content-type"].startswith("image/svg"), (title, icon.group(1))
        assert page.locator("text=Would you like to receive official Jupyter news").count() == 0

    with step(page, "04-notebook-opened"):
        page.goto(f"{JUPYTER}/lab/tree/{notebook}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
        # A notebook never opened before may ask which kernel to start: the one it names (Python 3).
        select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
        try:
            select.wait_for(timeout=15_000)
            select.click()
        except PlaywrightTimeout:
            pass
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)

    with step(page, "05-notebook-ran"):
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name=re.compile(r"^Run All Cells")).click()
        page.wait_for_function(
            """() => {
                const prompts = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')];
                return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent));
            }""",
            timeout=RUN_TIMEOUT_MS,
        )
        errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
        assert errors.count() == 0, errors.all_inner_texts()
        outputs = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
        run_id = re.search(r"http://\S+ ([0-9a-f]{32})", outputs)
        assert run_id, "the MLflow cell printed no run id"
        # Output a user can read: no warnings (MLflow's git warning was three screens of them)
        stderr = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
        warnings = [t for t in stderr.all_inner_texts() if re.search(r"(?i)warn|failed to import", t)]
        assert not warnings, f"the notebook printed warnings: {warnings}"
        # MLflow's run link opens through JupyterLab (its proxy at /mlflow/), not at the cluster's mlflow:5000
        link = page.locator(".jp-OutputArea-output a", has_text="first-run").first
        run_link = link.evaluate("a => a.href")
        assert run_link.startswith(f"{JUPYTER}/mlflow/#/experiments/") and run_link.endswith(run_id.group(1)), run_link

    with step(page, "06-job-progress"):
        assert page.locator(".sparkMonitorCellRoot").count() >= 1, "no Spark progress display under any cell"
        page.locator(".sparkMonitorCellRoot", has=page.locator(".tdjobstatus")).first.scroll_into_view_if_needed()
        statuses = page.locator(".sparkMonitorCellRoot .tdjobstatus").all_inner_texts()
        assert any("COMPLETED" in s.upper() for s in statuses), f"no finished job in the display: {statuses}"

    with step(page, "07-spark-ui-jobs"):
        page.goto(f"{JUPYTER}/spark-ui/jobs/")
        page.wait_for_selector("#completed")
        assert "getting-started" in page.content()

    with step(page, "08-spark-ui-executors"):
        page.goto(f"{JUPYTER}/spark-ui/executors/")
        page.wait_for_function("document.querySelectorAll('#active-executors-table tbody tr').length >= 3")
        page.locator("text=Loading Executors Page").wait_for(state="hidden")
        ids = [t.strip() for t in page.locator("#active-executors-table tbody tr td:first-child").all_inner_texts()]
        assert "driver" in ids and len(ids) >= 3, f"executors listed: {ids}"
        logs = [
            href
            for href in page.locator("#active-executors-table a").evaluate_all("as => as.map(a => a.href)")
            if "logType=stderr" in href
        ]
        assert logs, "no executor log links on the Executors page"

    with step(page, "09-executor-log"):
        assert urlsplit(logs[0]).netloc == urlsplit(JUPYTER).netloc, f"log link leaves JupyterLab: {logs[0]}"
        page.goto(logs[0])
        page.wait_for_selector("pre, #log-content, .log-content", state="attached")
        assert "Spark Executor Command" in page.content() or "CoarseGrainedExecutorBackend" in page.content()

    with step(page, "10-spark-ui-in-lab"):
        page.goto(f"{JUPYTER}/lab?reset")  # a workspace with just the launcher
        page.locator(".jp-LauncherCard", has_text="Spark UI").first.click()
        frame = page.frame_locator("iframe[src*='spark-ui']")
        frame.locator("text=Spark Jobs").first.wait_for()

    with step(page, "11-mlflow-run"):
        page.goto(run_link)  # the link the notebook showed
        page.get_by_text("first-run", exact=True).first.wait_for()
        page.get_by_text("20000000").first.wait_for()  # the run's parameter "rows"

    outside = sorted({u for u in requests if u.startswith("http") and urlsplit(u).netloc != urlsplit(JUPYTER).netloc})
    assert not outside, f"the browser made requests outside JupyterLab: {outside}"
