"""Admin page, plans (issue 17): an admin creates, edits and deletes a plan from the page, finds
a user by email, sees emails beside the uids of the top users; a user on a plan that downgrades
them sees their plan and, past its downgrade point, a sentence saying where their paid calls go."""
from __future__ import annotations

import time
import uuid

import pytest
import requests

from scripts.devkit import browser
from scripts.devkit.auth_emulator import OWNER

from .helpers import wait_text

PAID = "openai/gpt-4o-mini"
FREE = "meta-llama/llama-3.3-70b-instruct:free"


@pytest.fixture(scope="module", autouse=True)
def plans_left_behind(db):
    """This module's plans are deleted after it (other tests' users have none)."""
    before = {snap.id for snap in db.collection("plans").stream()}
    yield
    for snap in db.collection("plans").stream():
        if snap.id not in before:
            snap.reference.delete()


def plan_seen(api, user, pid: str) -> None:
    """The API's instance has the plan (its copy reloads within seconds when a claim names a
    plan it lacks)."""
    deadline = time.monotonic() + 60
    while api.request("GET", "/v1/budget", user).json().get("plan") != pid and time.monotonic() < deadline:
        time.sleep(0.5)
    assert api.request("GET", "/v1/budget", user).json()["plan"] == pid


def auth_emails(auth, uids: list[str]) -> dict[str, str]:
    """The users' emails as the Auth emulator keeps them (not through the app)."""
    response = requests.post(f"{auth.base}/identitytoolkit.googleapis.com/v1/projects/{auth.project}/accounts:lookup",
                             json={"localId": uids}, headers=OWNER, timeout=10)
    response.raise_for_status()
    return {u["localId"]: u.get("email", "") for u in response.json().get("users", [])}


def test_admin_manages_plans_and_finds_users_by_email(page, app_url, auth, api):
    admin = auth.create_user("admin", admin=True)
    pid = f"web-{uuid.uuid4().hex[:8]}"
    member = auth.create_user("member")
    auth.set_claims(member.uid, {"stripeRole": pid})
    auth.refresh(member)

    browser.sign_in(page, app_url, admin, "#/admin")
    page.locator("#main[data-ready]").wait_for()
    page.get_by_label("Plan id").fill(pid)
    page.get_by_label("Budget of the plan per month (USD)").fill("2.5")
    page.get_by_label("Enforce the budget of the plan").check()
    page.get_by_label("Allowed models (comma-separated ids or globs; empty: all)").fill(f"{PAID}, {FREE}")
    page.get_by_label("Downgrade to (model id; empty: no downgrade)").fill(FREE)
    page.get_by_label("Downgrade at (share of the budget, default 1)").fill("0.8")
    page.get_by_role("button", name="Save plan").click()
    wait_text(page, "#plan-result", f"Plan {pid} saved.")
    row = f"#plans-table tr[data-plan='{pid}']"
    cells = lambda: page.eval_on_selector(row, "tr => [...tr.cells].slice(0, 5).map(c => c.textContent)")  # noqa: E731
    assert cells() == [pid, "$2.50", "yes", f"{PAID}, {FREE}", f"{FREE} at 80%"]
    stored = api.request("GET", f"/v1/admin/plans/{pid}", admin).json()
    assert (stored["monthly_budget"], stored["enforce"], stored["allowed_models"], stored["downgrade_to"],
            stored["downgrade_at"]) == (2.5, True, [PAID, FREE], FREE, 0.8)

    page.get_by_role("button", name=f"Edit plan {pid}").click()
    assert page.input_value("#plan-budget") == "2.5"
    page.get_by_label("Budget of the plan per month (USD)").fill("4")
    page.get_by_role("button", name="Save plan").click()
    page.wait_for_function("([s]) => document.querySelector(s)?.cells[1].textContent === '$4.00'", arg=[row])
    assert api.request("GET", f"/v1/admin/plans/{pid}", admin).json()["monthly_budget"] == 4

    page.get_by_label("Email").fill(member.email)
    page.get_by_role("button", name="Find user").click()
    wait_text(page, "#find-result", f"{member.email} is user {member.uid}, on the {pid} plan.")
    assert page.input_value("#budget-uid") == member.uid  # ready for "Set a user's budget"
    page.get_by_label("Email").fill(f"nobody-{uuid.uuid4().hex[:6]}@example.com")
    page.get_by_role("button", name="Find user").click()
    page.wait_for_function("document.querySelector('#find-result').textContent.startsWith('No user has the email')")

    page.get_by_role("button", name=f"Delete plan {pid}").click()
    wait_text(page, "#plan-result", f"Plan {pid} deleted.")
    assert page.locator(row).count() == 0
    assert api.request("GET", f"/v1/admin/plans/{pid}", admin).status_code == 404


def test_top_users_show_emails_beside_uids(page, app_url, auth, api):
    admin = auth.create_user("admin", admin=True)
    spender = auth.create_user("spender")
    assert api.chat(spender, PAID, "hello", max_tokens=40).status_code == 200
    browser.sign_in(page, app_url, admin, "#/admin")
    page.locator("#main[data-ready]").wait_for()
    listed = page.eval_on_selector_all("#top-users tbody tr", "trs => trs.map(tr => [tr.cells[1].textContent, tr.cells[2].textContent])")
    assert listed, "no top users"
    assert dict(listed) == auth_emails(auth, [uid for uid, _ in listed])


def test_users_page_shows_the_plan_and_says_when_calls_are_downgraded(page, app_url, auth, api):
    admin = auth.create_user("admin", admin=True)
    pid = f"webdg-{uuid.uuid4().hex[:8]}"
    response = api.request("PUT", f"/v1/admin/plans/{pid}", admin, json={
        "monthly_budget": 0, "enforce": True, "downgrade_to": FREE, "free_daily_requests": None})
    assert response.status_code == 201, response.text
    user = auth.create_user("downgraded")
    auth.set_claims(user.uid, {"stripeRole": pid})
    auth.refresh(user)
    plan_seen(api, user, pid)

    browser.sign_in(page, app_url, user)
    page.locator("#main[data-ready]").wait_for()
    wait_text(page, "#plan-text", f"You are on the {pid} plan. You have used 100% or more of your budget, so your "
                                  f"paid calls are now served on {FREE}.")

    page.goto(f"{app_url}/#/playground")
    page.locator("#main[data-ready]").wait_for()
    page.select_option("#model", PAID)
    page.get_by_role("button", name="Send").click()
    wait_text(page, "#downgraded", f"Your budget for {PAID} is used up, so this answer comes from {FREE} instead.")
    assert page.text_content("#problem") == ""
