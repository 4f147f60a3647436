"""Admin: the ledger's healing (GET /v1/admin/ledger-health) is shown on the admin page."""
from __future__ import annotations

from scripts.devkit import browser


def test_the_admin_page_shows_the_ledger_health(context, app_url, auth, api):
    admin = auth.create_user("admin", admin=True)
    page = context.new_page()
    browser.sign_in(page, app_url, admin, "#/admin")
    page.locator("#ledger-health-table").wait_for()
    health = api.request("GET", "/v1/admin/ledger-health", admin).json()
    cells = page.locator("#ledger-health-table tbody tr").evaluate_all(
        "rows => rows.map(r => [r.querySelector('th').textContent, r.querySelector('td').textContent])")
    pending = health["pending_rows"]
    oldest = "none" if health["oldest_queued_age_s"] is None else None
    assert cells[0] == ["Queued in the outbox", f"{health['queued']:,}"]
    assert cells[1][0] == "Oldest still queued" and (oldest is None or cells[1][1] == oldest)
    assert cells[2:] == [
        ["Healed in the last hour", f"{health['healed_last_hour']:,}"],
        ["Healed in the last day", f"{health['healed_last_day']:,}"],
        ["Dead-lettered", f"{health['dead_lettered']:,}"],
        ["Pending rows (under 1 h / 1 h to 1 d / older)",
         f"{pending['under_1h']:,} / {pending['1h_to_1d']:,} / {pending['over_1d']:,}"],
    ]
