"""Offline demo: real users in the Auth emulator send free and paid chats through the HTTPS
API; the per-user ledger is read back from Firestore (each month through tokenledger.periods,
the base document and its shards summed), printed as a table and compared with what the calls
were charged; the fold then moves the shards back into the base documents. Then budgets: a
user crosses 80% and 100% of a monthly budget (the alerts printed as they are written), and a
user with a hard cap is refused with 402 before anything reaches OpenRouter.

Run it with `make demo` (which starts the emulators and the OpenRouter stand-in around it).
"""
from __future__ import annotations

import os
import sys
from decimal import Decimal

from google.cloud import firestore

from scripts.devkit import env as stack_env
from scripts.devkit.api_client import ApiClient
from scripts.devkit.auth_emulator import AuthEmulator
from tokenledger import money, periods, store
from tokenledger.tools.table import print_table, usd

# Who does what: a mix of free and paid models, features, and a router call.
SCRIPT = {
    "alice": [
        ("openai/gpt-4o", "Draft a product announcement for our new budgeting feature.", "writer"),
        ("anthropic/claude-sonnet-4", "Review this paragraph for tone and clarity, please.", "writer"),
        ("deepseek/deepseek-r1", "Think step by step: what is 17 * 23 + 4?", "tutor"),
        ("openrouter/auto", "Summarise the last meeting in three bullet points.", "summary"),
    ],
    "bob": [
        ("meta-llama/llama-3.3-70b-instruct:free", "Tell me a short joke about databases.", "chat"),
        ("deepseek/deepseek-chat-v3-0324:free", "What is the capital of Australia?", "chat"),
        ("openrouter/free", "Give me a haiku about autumn.", "chat"),
    ],
    "carol": [
        ("openai/gpt-4o-mini", "Translate 'good morning' into French and Spanish.", "translate"),
        ("meta-llama/llama-3.3-70b-instruct:free", "List three prime numbers.", "chat"),
        ("perplexity/sonar", "What changed in the latest Python release?", "search"),
        ("openai/gpt-4o-mini", "Rewrite: 'the meeting is moved to thursday'.", "translate"),
    ],
}


COLUMNS = ["user", "calls", "free calls", "paid calls", "free tokens", "paid tokens", "cost"]
COUNTERS = ("calls", "free_calls", "paid_calls", "free_tokens", "paid_tokens", "cost_nanos")


def tally(sent: dict, body: dict) -> None:
    """Adds one answered call to a user's tally of what was sent, from the chat response alone:
    a call is free when it cost nothing (as the ledger counts it)."""
    usage = body["usage"]
    nanos = money.to_nanos(Decimal(repr(float(usage.get("cost") or 0))))
    kind = "paid" if nanos else "free"
    for name, amount in (("calls", 1), (f"{kind}_calls", 1), (f"{kind}_tokens", int(usage["total_tokens"])),
                         ("cost_nanos", nanos)):
        sent[name] = sent.get(name, 0) + amount


def read_usage(db, uids: dict[str, str]) -> dict[tuple[str, str], dict]:
    """The demo's reading code: {(name, month): counters} for every month each user has, each
    month read whole through periods.read (the base document and its shards, summed)."""
    out = {}
    for name, uid in uids.items():
        months = db.collection(store.USER_USAGE).document(uid).collection(store.MONTHS)
        for month in sorted({store.period_of(snap.id) for snap in months.select(["month"]).stream()}):
            doc = periods.read(db, uid, periods.MONTHS, month)
            out[(name, month)] = {counter: int(doc.get(counter) or 0) for counter in COUNTERS}
    return out


def main() -> int:
    stack = stack_env.from_environ()
    auth = AuthEmulator(stack.auth_host, stack.project)
    api = ApiClient(stack.api_url)
    db = firestore.Client(project=stack.project)

    users = {name: auth.create_user(name) for name in SCRIPT}
    total = sum(len(calls) for calls in SCRIPT.values())
    done = 0
    sent: dict[str, dict] = {name: {} for name in SCRIPT}
    print(f"Sending {total} chats for {len(users)} users through {stack.api_url}")
    for name, calls in SCRIPT.items():
        for model, text, feature in calls:
            done += 1
            response = api.chat(users[name], model, text, feature=feature, max_tokens=200)
            if response.status_code != 200:
                print(f"  [{done}/{total}] {name}: {model} -> HTTP {response.status_code} {response.text}")
                return 1
            body = response.json()
            tally(sent[name], body)
            print(
                f"  [{done}/{total}] {name:<6} {model:<42} served by {body['model']:<40} "
                f"{body['usage']['total_tokens']:>5} tokens  ${body['usage'].get('cost', 0):.9f}"
            )

    usage = read_usage(db, {name: user.uid for name, user in users.items()})
    months = sorted({month for _, month in usage})
    rows = [[name if len(months) == 1 else f"{name} ({month})", *(counters[c] for c in COUNTERS[:-1]),
             usd(counters["cost_nanos"], 9)] for (name, month), counters in usage.items()]
    print_table(COLUMNS, rows,
                title=f"Usage for {', '.join(months)}, read back from Firestore (user_usage rollups, base + shards)")
    read = {name: {c: sum(v[c] for (n, _), v in usage.items() if n == name) for c in COUNTERS} for name in SCRIPT}
    wrong = [name for name in SCRIPT if read[name] != {c: sent[name].get(c, 0) for c in COUNTERS}]
    if wrong:
        print(f"  MISMATCH: the table differs from the calls sent for {', '.join(wrong)}")
        return 1
    print("  every row equals what its user's calls were charged (calls, free/paid tokens, cost to the nano-dollar)")
    show_fold(db, {name: user.uid for name, user in users.items()}, months)
    return budgets_demo(auth, api, db)


def show_fold(db, uids: dict[str, str], months: list[str]) -> None:
    """What the scheduled fold_shards does once a hot user cools down, run now (cool-down 0): the
    base month document alone then holds the whole month (README, "Reading your own data")."""
    from datetime import datetime, timezone

    from tokenledger.metering import fold

    hot = {name for name, uid in uids.items() for month in months
           if len(periods.read_docs(db, uid, periods.MONTHS, month, ["month"])) > 1}
    report = fold.fold_shards(db, datetime.now(timezone.utc), cool_s=0, months=months)
    bases = {name: sum(int((store.user_month_doc(db, uid, m).get().to_dict() or {}).get("calls") or 0) for m in months)
             for name, uid in uids.items()}
    print(f"\nHot users (month spread over shards): {', '.join(sorted(hot)) or 'none'}. The fold "
          f"(scheduled `fold_shards`, cool-down 0 here) moved {report.shards_folded} shards into "
          f"{report.periods_folded} base documents in {report.writes} writes; a plain read of each base "
          f"month document now shows calls: " + ", ".join(f"{name} {n}" for name, n in bases.items()))


def budgets_demo(auth: AuthEmulator, api: ApiClient, db) -> int:
    print("\n== Budgets and alerts ==")
    admin = auth.create_user("admin", admin=True)
    dave, erin = auth.create_user("dave"), auth.create_user("erin")
    model, text = "anthropic/claude-sonnet-4", "Summarise our Q3 planning notes in five bullet points."

    first = api.chat(dave, model, text, max_tokens=200).json()
    cost = first["usage"]["cost"]
    budget = round(cost * 4.5, 6)  # dave crosses 80% on his 4th call and 100% on his 5th
    api.request("PUT", f"/v1/admin/budgets/{dave.uid}", admin,
                json={"monthly_budget": budget, "alert_thresholds": [0.8, 1.0], "email": dave.email,
                      "enforce": False}).raise_for_status()
    print(f"Admin sets dave's monthly budget to ${budget:.6f} (alerts at 80% and 100%, not enforced); "
          f"one call costs about ${cost:.6f}")
    seen: set[str] = set()
    rows = []
    for n in range(2, 7):
        body = api.chat(dave, model, text, max_tokens=200).json()
        status = body["budget"]
        alerts = api.request("GET", "/v1/alerts", dave).json()["data"]
        new = [a for a in reversed(alerts) if a["id"] not in seen]
        seen.update(a["id"] for a in new)
        rows.append([n, f"${status['spent']:.6f}", f"{status['percentage_used']:.1f}%",
                     ", ".join(f"{a['alert_type']} at {a['threshold']:.0%} ({a['source']})" for a in new) or "-"])
    print_table(["call", "spent this month", "of budget", "alert written by this call"], rows,
                title="dave's calls (the budget object of each chat response, and GET /v1/alerts)", numparse=False)
    mails = [db.collection("mail").document(a).get() for a in sorted(seen)]
    for mail in mails:
        if mail.exists:
            print(f"  mail to {mail.get('to')}: {mail.get('message')['subject']}")
    print_deliveries(db, sorted(seen))

    from scripts.trigger_schedule import trigger  # the scheduled function, run once by hand

    status, text_out = trigger("check_budgets")
    print(f"Scheduled check_budgets run: HTTP {status}; alerts for dave still {len(api.request('GET', '/v1/alerts', dave).json()['data'])} (each written once)")

    cheap = "openai/gpt-4o-mini"
    api.request("PUT", f"/v1/admin/budgets/{erin.uid}", admin, json={"monthly_budget": 0.0001, "enforce": True}).raise_for_status()
    print("\nAdmin gives erin a hard cap of $0.0001 a month (enforce: true)")
    for n in range(1, 20):
        response = api.chat(erin, cheap, "Translate 'see you tomorrow' into German.", max_tokens=100)
        if response.status_code == 402:
            error = response.json()["error"]
            print(f"  call {n}: HTTP 402 {error['code']}: {error['message']}")
            break
        print(f"  call {n}: HTTP {response.status_code}, spent ${response.json()['budget']['spent']:.6f} of $0.0001")
    else:
        print("  erin was never refused: the cap did not hold")
        return 1
    free = api.chat(erin, "meta-llama/llama-3.3-70b-instruct:free", "Tell me a joke.")
    print(f"  a free model for erin: HTTP {free.status_code} (free models are never refused by the dollar budget)")
    return 0


def print_deliveries(db, alert_ids: list[str]) -> None:
    """Where the alert-created trigger delivered each alert (TOKENLEDGER_ALERT_WEBHOOKS; on the
    stack: its loopback webhook sink and targets the SSRF guard refuses). docs/alerts.md."""
    import time

    for alert_id in alert_ids:
        started, doc = time.monotonic(), {}
        while time.monotonic() - started < 60:
            doc = db.collection("budget_alerts").document(alert_id).get().to_dict() or {}
            if doc.get("delivery_pending") is False:
                break
            if not doc.get("deliveries") and time.monotonic() - started > 10:
                break  # no webhook targets configured
            time.sleep(0.5)
        states = [s.get("status") for s in (doc.get("deliveries") or {}).values()]
        if states:
            print(f"  webhooks for {doc.get('alert_type')} at {doc.get('threshold', 0):.0%}: "
                  + ", ".join(f"{states.count(k)} {k}" for k in ("delivered", "blocked", "failed", "retrying") if k in states)
                  + " (signed; blocked = refused by the SSRF guard)")


def print_app_url() -> None:
    url = os.environ.get("APP_URL")
    if url:
        print(f"\nThe web app (usage dashboard, playground, admin): {url}\n"
              "  served while the stack runs: `make up` keeps it running, then "
              "`. .stack/env && functions/venv/bin/python scripts/web_users.py` creates accounts to sign in with")


if __name__ == "__main__":
    code = main()
    print_app_url()
    sys.exit(code)
