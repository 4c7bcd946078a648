"""GraphiQL in headless Chromium, offline: the page, a query, and a subscription receiving a payment.

The page loads only from the local stage (the vendored npm packages), so a
request to any other host is aborted here: a CDN reference would leave the
page blank and fail the test. Skipped with the reason when Debian's
``chromium`` or GraphiQL (``make graphiql``) is missing.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from devstack.graphiql_page import ASSETS, VENDOR_DIR
from tests.e2e.test_realtime_gql import register, session_ended

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SUBSCRIPTION = "subscription Mine {\n  onPaymentCompleted(userId: \"%s\") { invoiceId amount currency }\n}"


@pytest.fixture
def page(local_stack):
    if CHROMIUM is None:
        pytest.skip("Debian chromium is not installed (apt-get install chromium)")
    if not (VENDOR_DIR / ASSETS["graphiql.min.js"]).is_file():
        pytest.skip("GraphiQL is not vendored: run make graphiql")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(
            local_stack.base_url) else route.abort())  # offline: only the local stage answers
        yield context.new_page()
        browser.close()


def _run(page, query: str) -> None:
    editor = page.locator(".graphiql-query-editor .CodeMirror").first
    editor.click()
    page.evaluate("(q) => document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q)",
                  query)
    page.locator(".graphiql-execute-button").click()


def _result(page) -> str:
    return page.evaluate("() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue()")


def test_graphiql_answers_a_query_offline(local_stack, page):
    page.goto(local_stack.base_url + "/graphql")
    page.wait_for_selector(".graphiql-execute-button", timeout=30_000)
    _run(page, "{ __typename }")
    page.wait_for_function("() => document.querySelector('.result-window .CodeMirror')"
                           ".CodeMirror.getValue().includes('Query')", timeout=30_000)
    assert '"__typename": "Query"' in _result(page)


def test_graphiql_subscription_receives_a_payment(local_stack, page, tmp_path):
    token, user_id = register(local_stack)
    local_stack.wait_for(lambda: (local_stack.graphql("{ wallet { balance } }", token=token)[1].get("data")
                                  or {}).get("wallet"), 30)
    page.goto(local_stack.base_url + "/graphql")
    page.wait_for_selector(".graphiql-execute-button", timeout=30_000)
    page.fill("#token", token)
    _run(page, SUBSCRIPTION % user_id)
    page.wait_for_timeout(1500)  # the start is acknowledged before the session is billed
    assert local_stack.put_event(session_ended(user_id))[0] == 202
    page.wait_for_function("() => document.querySelector('.result-window .CodeMirror')"
                           ".CodeMirror.getValue().includes('10.40')", timeout=45_000)
    assert '"amount": "10.40"' in _result(page) and '"onPaymentCompleted"' in _result(page)
    shot = Path(os.environ.get("GRAPHIQL_SCREENSHOT", tmp_path / "graphiql-subscription.png"))
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000
