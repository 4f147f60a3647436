"""My usage: totals equal /v1/usage and the rollup, the chart is drawn with the right series,
a new call shows up without a reload, the CSV download is the export."""
from __future__ import annotations

from datetime import datetime, timezone

from scripts.devkit import browser

from .helpers import month_rollup, usd, wait_text

PAID = "openai/gpt-4o-mini"
OTHER = "anthropic/claude-3.5-haiku"
FREE = "meta-llama/llama-3.3-70b-instruct:free"


def table_rows(page, table_id: str) -> dict[str, list[str]]:
    return page.evaluate("""(id) => Object.fromEntries([...document.querySelectorAll(`#${id} tbody tr`)]
        .map((tr) => [tr.cells[0].textContent, [...tr.cells].slice(1).map((c) => c.textContent)]))""", table_id)


def canvas_painted_pixels(page) -> int:
    return page.evaluate("""() => {
        const c = document.querySelector('#daily-chart');
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] !== 0) n++;
        return n;
    }""")


def test_usage_page_matches_the_api_and_rollup_and_updates_live(page, app_url, auth, api, db, shots):
    user = auth.create_user("usage")
    for model, text in ((PAID, "first"), (OTHER, "second"), (FREE, "third")):
        assert api.chat(user, model, text, max_tokens=50).status_code == 200
    month = datetime.now(timezone.utc).strftime("%Y-%m")
    summary = api.request("GET", "/v1/usage", user).json()
    rollup = month_rollup(db, user.uid, month)
    assert summary["totals"]["cost_nanos"] == rollup["cost_nanos"]

    browser.sign_in(page, app_url, user)
    wait_text(page, "#total-calls", "3")
    page.wait_for_function("JSON.parse(document.querySelector('#daily-chart').dataset.series || '[]').length === 3")
    assert page.text_content("#total-cost") == usd(rollup["cost_nanos"])
    assert int(page.get_attribute("#total-cost", "data-nanos")) == summary["totals"]["cost_nanos"]
    assert page.text_content("#free-tokens") == f"{summary['totals']['free_tokens']:,}"
    assert page.text_content("#paid-tokens") == f"{summary['totals']['paid_tokens']:,}"
    assert page.text_content("#free-calls") == "1 / 2"
    expected = {m: [f"{b['calls']:,}", f"{b['tokens']:,}", usd(b["cost_nanos"])] for m, b in summary["by_model"].items()}
    assert table_rows(page, "by-model") == expected
    assert set(table_rows(page, "by-provider")) == set(summary["by_provider"])
    # The chart: one stacked series per model of the month, and pixels actually drawn.
    assert page.get_attribute("#daily-chart", "data-series") == '["%s"]' % '","'.join(sorted([PAID, OTHER, FREE]))
    assert canvas_painted_pixels(page) > 0
    page.screenshot(path=str(shots / "web-usage.png"), full_page=True)

    # A new call while the page is open: the page follows without a reload.
    page.evaluate("window.__sameDocument = 'yes'")
    assert api.chat(user, OTHER, "fourth", max_tokens=50).status_code == 200
    wait_text(page, "#total-calls", "4")
    after = month_rollup(db, user.uid, month)
    wait_text(page, "#total-cost", usd(after["cost_nanos"]))
    assert page.evaluate("window.__sameDocument") == "yes"  # no reload happened
    assert table_rows(page, "by-model")[OTHER][0] == "2"

    # A reload keeps the session (persisted by Firebase Auth) and shows the same month.
    page.reload()
    wait_text(page, "#total-calls", "4")
    assert page.text_content("#total-cost") == usd(after["cost_nanos"])


def test_csv_download_is_the_export(page, app_url, auth, api):
    user = auth.create_user("csv")
    for text in ("one", "two"):
        assert api.chat(user, PAID, text, max_tokens=30).status_code == 200
    browser.sign_in(page, app_url, user)
    wait_text(page, "#total-calls", "2")
    month = page.input_value("#month")
    with page.expect_download() as info:
        page.get_by_role("button", name="Download CSV").click()
    download = info.value
    body = open(download.path(), "rb").read()
    year, mon = map(int, month.split("-"))
    last = (datetime(year + mon // 12, mon % 12 + 1, 1) - datetime(year, mon, 1)).days
    export = api.request("GET", f"/v1/usage/export?from={month}-01&to={month}-{last:02d}&format=csv", user)
    assert export.status_code == 200
    assert body == export.content
    assert body.decode().count("\n") == 3  # header + two rows
    assert download.suggested_filename == f"usage-{month}.csv"
