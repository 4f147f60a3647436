"""Prepaid credits in the browser: the admin grants credits with a reason from the Admin page and
sees the user's wallet; the user's "My usage" page shows the balance, what calls in progress
hold and the history, newest first; a pure-prepaid user's paid call is paid from the wallet and
the page shows the new balance."""
from __future__ import annotations

from .helpers import rows_of, usd, wait_text

PAID = "openai/gpt-4o-mini"


def test_admin_grants_credits_and_the_user_sees_balance_held_and_history(context, chromium, app_url, auth, api, db,
                                                                         shots):
    from scripts.devkit import browser

    user = auth.create_user("credits")
    admin = auth.create_user("admin", admin=True)
    assert api.request("PUT", f"/v1/admin/budgets/{user.uid}", admin,
                       json={"monthly_budget": 0, "enforce": True}).status_code in (200, 201)

    admin_ctx = chromium.new_context(viewport={"width": 1200, "height": 900})
    try:
        admin_page = admin_ctx.new_page()
        browser.sign_in(admin_page, app_url, admin, "#/admin")
        admin_page.locator("#main[data-ready]").wait_for()
        admin_page.locator("#credits-uid").fill(user.uid)
        admin_page.get_by_label("Amount (USD; negative to adjust)").fill("2.5")
        admin_page.get_by_label("Reason").fill("welcome pack")
        admin_page.get_by_role("button", name="Grant credits").click()
        wait_text(admin_page, "#credits-result", f"Granted: {user.uid} now has $2.50.")
        # the same form sent again (a double click, a retry) grants once: same idempotency key
        admin_page.get_by_role("button", name="Grant credits").click()
        wait_text(admin_page, "#credits-result", f"Already granted: {user.uid} now has $2.50.")
        admin_page.get_by_label("Amount (USD; negative to adjust)").fill("-0.5")
        admin_page.get_by_label("Reason").fill("refund")
        admin_page.get_by_role("button", name="Grant credits").click()
        wait_text(admin_page, "#credits-result", f"Granted: {user.uid} now has $2.00.")
        admin_page.locator("#admin-wallet[data-ready]").wait_for()
        assert admin_page.text_content("#admin-credits-balance") == "$2.00"
        kinds = admin_page.eval_on_selector_all("#admin-credits-history-rows tr",
                                                "trs => trs.map(tr => [tr.cells[1].textContent, tr.cells[2].textContent, tr.cells[3].textContent])")
        assert kinds == [["Adjustment", "-$0.50", "refund"], ["Grant", "$2.50", "welcome pack"]]
    finally:
        admin_ctx.close()

    # A paid call, paid from the wallet (the allowance is $0).
    assert api.chat(user, PAID, "hello", max_tokens=40).status_code == 200
    [row] = rows_of(db, user.uid)
    assert (row["allowance_nanos"], row["credits_nanos"]) == (0, row["cost_nanos"]) and row["cost_nanos"] > 0

    page = context.new_page()
    browser.sign_in(page, app_url, user)
    page.locator("#credits[data-ready]").wait_for()
    assert page.text_content("#credits-balance") == usd(2_000_000_000 - row["cost_nanos"])
    assert page.get_attribute("#credits-balance", "data-nanos") == str(2_000_000_000 - row["cost_nanos"])
    assert page.text_content("#credits-held") == "$0.00"  # nothing in progress
    assert page.text_content("#credits-spent") == usd(row["cost_nanos"])
    history = page.eval_on_selector_all("#credits-history-rows tr",
                                        "trs => trs.map(tr => [tr.cells[1].textContent, tr.cells[2].textContent])")
    assert history == [["Adjustment", "-$0.50"], ["Grant", "$2.50"]]
    page.screenshot(path=str(shots / "web-credits.png"), full_page=True)
