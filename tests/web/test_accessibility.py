"""No serious or critical axe-core violations on any page; every control is reachable with the
keyboard and labelled."""
from __future__ import annotations

from scripts.devkit import browser

PAGES = {
    "usage": ["month", "download-csv"],
    "playground": ["model", "prompt", "max-tokens", "send"],
    "admin": ["admin-month", "find-email", "find-go", "budget-uid", "budget-amount", "budget-enforce", "budget-save",
              "credits-uid", "credits-amount", "credits-reason", "credits-grant", "credits-show",
              "plan-id", "plan-budget", "plan-enforce", "plan-models", "plan-downgrade-to", "plan-downgrade-at",
              "plan-save"],
}
NAV = ["nav-usage", "nav-playground", "nav-admin", "signout"]


def tab_order(page, presses: int) -> list[str]:
    page.locator("body").focus()
    seen = []
    for _ in range(presses):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement?.id || document.activeElement?.tagName"))
    return seen


def test_sign_in_page(page, app_url, shots):
    page.goto(app_url)
    page.locator("#signin-form").wait_for()
    assert browser.axe_violations(page) == []
    order = tab_order(page, 6)
    assert [i for i in order if i in ("email", "password", "signin", "create-account")] == \
        ["email", "password", "signin", "create-account"]
    page.screenshot(path=str(shots / "web-signin.png"))


def test_every_page_has_no_serious_violations_and_keyboard_reachable_controls(page, app_url, auth, api):
    admin = auth.create_user("a11y", admin=True)
    assert api.chat(admin, "openai/gpt-4o-mini", "hi", max_tokens=20).status_code == 200
    browser.sign_in(page, app_url, admin)
    for name, controls in PAGES.items():
        page.goto(f"{app_url}/#/{name}")
        page.locator("#main[data-ready]").wait_for()
        assert browser.axe_violations(page) == [], name
        rows = page.locator(".plan-edit, .plan-delete").count()  # each plan's Edit and Delete (admin)
        reached = tab_order(page, len(NAV) + len(controls) + rows + 4)
        for control in NAV + controls:
            assert control in reached, (name, control, reached)
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, textarea')]
            .filter((e) => !(e.labels && e.labels.length)).map((e) => e.id)""")
        assert unlabelled == [], name
