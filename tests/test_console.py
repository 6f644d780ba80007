"""The console in a real browser (Debian Chromium + Playwright) against a live API on 127.0.0.1."""

from __future__ import annotations

import pytest

from tests.browser_support import browser, login, page, shot  # noqa: F401  (fixtures)
from tianwang.auth.tokens import create_token

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_login_refuses_a_bad_token_then_shows_the_pages_of_the_role(live_server, page) -> None:  # noqa: F811
    srv, ctx = live_server
    with ctx.db.session() as s:
        staff = create_token(s, "staff", "browser-staff")
    page.goto(srv.url + "/")
    assert page.url.endswith("/console")
    page.fill("#tw-token", "not-a-token")
    page.click("#tw-login-form button[type=submit]")
    page.wait_for_selector("#tw-login-error:not(:empty)")
    assert page.is_hidden("#tw-main")
    login(page, srv.url + "/console", staff)
    assert "browser-staff" in page.inner_text("#tw-who")
    visible = [a.get_attribute("href") for a in page.query_selector_all("#tw-nav a") if a.is_visible()]
    assert "/console/coverage" in visible and "/console/investigation" not in visible
    page.click("#tw-lang")
    assert page.inner_text("#tw-nav a[href='/console/coverage']") == "Coverage"
    shot(page, "home-staff")


def test_unknown_page_is_404_and_no_page_fetches_outside(live_server, page) -> None:  # noqa: F811
    srv, _ = live_server
    outside: list[str] = []
    page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(srv.url) else None)
    assert page.goto(srv.url + "/console/nope").status == 404
    for p in ("coverage", "map", "install", "investigation", "registry"):
        assert page.goto(f"{srv.url}/console/{p}").status == 200
    assert outside == []
