"""The team workspace's hub as a person and a script reach it: its login and sign-up pages (forms with the hub's
XSRF cookie, as a browser posts them) and its REST API with a user's token."""

from __future__ import annotations

import re
import tempfile
import time
from pathlib import Path

import requests


class Hub:
    def __init__(self, url: str):
        self.url = url

    def wait_until_up(self, timeout: float = 120) -> None:
        """The proxy answers for the hub (it adds the hub's route a moment after the hub reports ready)."""
        deadline = time.monotonic() + timeout
        while (status := requests.get(f"{self.url}/hub/login", timeout=60).status_code) != 200:
            assert time.monotonic() < deadline, f"the hub's login page: {status} after {timeout:.0f} s"
            time.sleep(2)

    def form(self, path: str, data: dict, session: requests.Session | None = None) -> requests.Response:
        """GET the page (the hub sets its _xsrf cookie), then POST the form with it, as a browser does."""
        session = session or requests.Session()
        session.get(f"{self.url}{path}", timeout=60).raise_for_status()
        form = {**data, "_xsrf": session.cookies.get("_xsrf", "")}
        # not following a login's redirect: it leads on to starting the user's server
        response = session.post(f"{self.url}{path}", data=form, timeout=60, allow_redirects=False)
        assert response.status_code in (200, 302), f"POST {path}: {response.status_code} {text(response.text)[:500]}"
        return response

    def signup(self, user: str, password: str) -> str:
        data = {"username": user, "signup_password": password, "signup_password_confirmation": password}
        return text(self.form("/hub/signup", data).text)

    def login(self, user: str, password: str) -> tuple[requests.Session, str]:
        """A logged-in session (its cookies) and "" on success, else the login page's text (its error)."""
        session = requests.Session()
        response = self.form("/hub/login", {"username": user, "password": password}, session)
        return session, "" if response.status_code == 302 else text(response.text)

    def token(self, admin: requests.Session, user: str) -> str:
        """An API token for user, made by a logged-in admin (the hub's own /tokens API)."""
        response = admin.post(
            f"{self.url}/hub/api/users/{user}/tokens",
            json={"note": "mlrt e2e", "expires_in": 3600},
            headers={"X-XSRFToken": admin.cookies.get("_xsrf", "")},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["token"]

    def api(self, token: str, method: str, path: str, **kwargs) -> requests.Response:
        return requests.request(
            method, f"{self.url}{path}", headers={"Authorization": f"token {token}"}, timeout=60, **kwargs
        )

    def server(self, token: str, user: str) -> dict | None:
        """The user's default server as the hub's API reports it (None: not running)."""
        response = self.api(token, "GET", f"/hub/api/users/{user}")
        response.raise_for_status()
        return response.json().get("servers", {}).get("")

    def start(self, token: str, user: str) -> None:
        response = self.api(token, "POST", f"/hub/api/users/{user}/server")
        assert response.status_code in (201, 202), f"starting {user}'s server: {response.status_code} {response.text}"

    def stop(self, token: str, user: str) -> None:
        response = self.api(token, "DELETE", f"/hub/api/users/{user}/server")
        assert response.status_code in (202, 204), f"stopping {user}'s server: {response.status_code} {response.text}"

    def wait(self, token: str, user: str, ready: bool, timeout: float) -> float:
        """Seconds until the user's server is ready (ready) or gone (not ready); fails after timeout."""
        started = time.monotonic()
        while True:
            server = self.server(token, user)
            if (server is not None and server.get("ready")) if ready else server is None:
                return time.monotonic() - started
            state = "ready" if ready else "gone"
            assert time.monotonic() - started < timeout, f"{user}'s server not {state} after {timeout:.0f} s: {server}"
            time.sleep(2)


def text(html: str) -> str:
    """A page's words (tags dropped, whitespace folded): what a person reads."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def browser_login(url: str, user: str, password: str, shots: Path, timeout_s: int = 300) -> float:
    """A person's first visit in a real browser (Debian's Chromium through Playwright): the hub's login page, then
    the hub starts their server and JupyterLab opens at /user/<user>/lab. The node's clock (time.time()) when the
    login was submitted; a screenshot of the workspace (or of the failing page) goes to shots."""
    from playwright.sync_api import sync_playwright

    from tests.conftest import CHROMIUM, CHROMIUM_ARGS

    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
        context = playwright.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, args=CHROMIUM_ARGS, viewport={"width": 1400, "height": 800}
        )
        page = context.pages[0] if context.pages else context.new_page()
        try:
            page.goto(f"{url}/hub/login")
            page.fill("input[name=username]", user)
            page.fill("input[name=password]", password)
            submitted = time.time()
            page.click("#login_submit")
            page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=timeout_s * 1000)
            # her workspace, with the image's examples copied in at her server's first start
            page.locator(".jp-DirListing-item", has_text="examples").first.wait_for(timeout=120_000)
            page.screenshot(path=str(shots / f"hub-{user}-lab.png"))
            return submitted
        except Exception:
            page.screenshot(path=str(shots / f"FAILED-hub-{user}.png"))
            raise
        finally:
            context.close()
