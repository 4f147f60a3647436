"""Admin: budgets set from the page reach the user's gauge live; over budget the playground
says so in a sentence; totals, top users and drift come from the API and the reconcile job;
a non-admin never sees the view and the API refuses them."""
from __future__ import annotations

from datetime import datetime, timezone

from scripts.devkit import browser
from scripts.trigger_schedule import trigger

from .helpers import usd, wait_text

PAID = "openai/gpt-4o-mini"


def test_admin_sets_a_budget_the_users_gauge_shows_it_and_the_playground_refuses(
        context, chromium, app_url, auth, api, shots):
    user = auth.create_user("budgeted")
    admin = auth.create_user("admin", admin=True)
    user_page = context.new_page()
    browser.sign_in(user_page, app_url, user)
    user_page.locator("#main[data-ready]").wait_for()
    assert user_page.get_attribute("#gauge", "data-budget") == ""

    admin_ctx = chromium.new_context(viewport={"width": 1200, "height": 900})
    try:
        admin_page = admin_ctx.new_page()
        browser.sign_in(admin_page, app_url, admin, "#/admin")
        admin_page.locator("#main[data-ready]").wait_for()
        admin_page.get_by_label("User id").fill(user.uid)
        admin_page.get_by_label("Monthly budget (USD)").fill("0.00001")
        admin_page.get_by_label("Refuse calls over the budget").check()
        admin_page.get_by_role("button", name="Set budget").click()
        wait_text(admin_page, "#budget-result", f"Budget of {user.uid} set to $0.00001 (enforced).")
    finally:
        admin_ctx.close()

    # The user's open page follows the budget document: no reload.
    user_page.wait_for_function("document.querySelector('#gauge').dataset.budget === '0.00001'")
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    assert user_page.text_content("#gauge-text") == f"$0.00 of $0.00001 spent in {month} (0.0%)."
    assert api.request("GET", "/v1/budget", user).json()["monthly_budget"] == 0.00001
    user_page.screenshot(path=str(shots / "web-usage-budget.png"), full_page=True)

    user_page.goto(f"{app_url}/#/playground")
    user_page.locator("#main[data-ready]").wait_for()
    user_page.select_option("#model", PAID)
    user_page.get_by_role("button", name="Send").click()
    user_page.wait_for_function("document.querySelector('#problem').textContent !== ''")
    assert user_page.text_content("#problem") == (
        "This request could cost more than what is left of your monthly budget, so it was not sent. "
        "You have used $0.00 of your $0.00001 monthly budget. "
        "Choose a free model, ask for a shorter answer, or ask an administrator to raise your budget.")
    assert user_page.get_attribute("#problem", "data-code") == "budget_exceeded"
    assert user_page.text_content("#answer") == ""


def test_admin_view_shows_totals_top_users_and_drift(page, app_url, auth, api, db, standin, shots):
    user = auth.create_user("spender")
    admin = auth.create_user("admin", admin=True)
    assert api.chat(user, PAID, "hello", max_tokens=40).status_code == 200
    standin.configure(key_usage_offset=5)  # OpenRouter's account shows $5 the ledger never saw
    status, body = trigger("reconcile_usage", timeout=120)
    assert status == 200, body
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    drift = db.collection("reconciliation").document(month).get().to_dict()
    assert drift["above_tolerance"] is True

    browser.sign_in(page, app_url, admin, "#/admin")
    page.locator("#main[data-ready]").wait_for()
    totals = api.request("GET", f"/v1/admin/totals?month={month}", admin).json()
    cells = page.eval_on_selector_all("#totals-table tbody tr", "trs => trs.map(tr => [tr.cells[0].textContent, tr.cells[1].textContent])")
    assert dict(cells)["Cost"] == usd(totals["totals"]["cost_nanos"])
    assert dict(cells)["Calls"] == f"{totals['totals']['calls']:,}"
    assert dict(cells)["Active users"] == f"{totals['active_users']:,}"
    top = api.request("GET", f"/v1/admin/top-users?month={month}&limit=10", admin).json()["users"]
    listed = page.eval_on_selector_all("#top-users tbody tr", "trs => trs.map(tr => tr.cells[1].textContent)")
    assert listed == [u["user_id"] for u in top]
    checked = drift["checked_at"].strftime("%Y-%m-%d %H:%M")
    assert page.text_content("#drift") == (
        f"Drift above tolerance: ledger {usd(drift['ledger_total_nanos'])}, OpenRouter "
        f"{usd(drift['openrouter_total_nanos'])}, difference {usd(drift['drift_nanos'])} "
        f"(checked {checked} UTC). An admin alert is open.")
    page.screenshot(path=str(shots / "web-admin.png"), full_page=True)


def test_a_non_admin_gets_no_admin_view_and_the_api_refuses(page, app_url, auth, api):
    user = auth.create_user("plain")
    browser.sign_in(page, app_url, user)
    page.locator("#main[data-ready]").wait_for()
    assert page.locator("#nav-admin").count() == 0
    assert page.eval_on_selector_all("nav a", "as => as.map(a => a.textContent)") == ["My usage", "Playground"]
    page.goto(f"{app_url}/#/admin")
    wait_text(page, "#not-admin", "This page is for administrators.")
    assert page.locator("#admin-totals").count() == 0
    for path in ("/v1/admin/totals", "/v1/admin/top-users", "/v1/admin/alerts"):
        r = api.request("GET", path, user)
        assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden", path
