"""Alert delivery's pure parts: targets, the SSRF guard's decision, the event and its signature,
Slack's body, and the retry rules."""
from datetime import datetime, timedelta, timezone

import pytest

from tokenledger.notify import guard, payload, plan, targets

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)
ALLOW = ("127.0.0.1:8123",)


def t(url):
    return targets.parse(url)


def test_targets_slack_by_host_or_prefix_webhook_otherwise_and_ids_never_hold_the_url():
    slack = t("https://hooks.slack.com/services/T0/B0/SECRET")
    prefixed = t("slack+https://chat.example.com/hook")
    plain = t("https://example.com/hook")
    assert (slack.kind, prefixed.kind, plain.kind) == ("slack", "slack", "webhook")
    assert prefixed.url == "https://chat.example.com/hook"
    assert slack.id.startswith("slack-") and "SECRET" not in slack.id and len(slack.id) == len("slack-") + 12
    assert (plain.host, plain.port, plain.host_port) == ("example.com", 443, "example.com:443")
    assert t("http://[::1]:80/x").host_port == "[::1]:80"


@pytest.mark.parametrize("url", ["ftp://example.com/x", "https:///nohost", "https://user:pw@example.com/",
                                 "not a url", "https://example.com:99999/"])
def test_unusable_targets_are_reported_not_fatal(url):
    good, bad = targets.parse_all([url, "https://example.com/ok"])
    assert [g.url for g in good] == ["https://example.com/ok"]
    assert len(bad) == 1 and bad[0][0].startswith("webhook-")


@pytest.mark.parametrize("address, word", [
    ("127.0.0.1", "loopback"), ("::1", "loopback"), ("169.254.169.254", "link-local"), ("fe80::1", "link-local"),
    ("10.1.2.3", "private"), ("192.168.0.1", "private"), ("172.16.0.1", "private"), ("fd00::1", "unique-local"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"), ("::ffff:127.0.0.1", "IPv4-mapped"),
    ("::ffff:169.254.169.254", "IPv4-mapped"), ("100.64.0.1", "not a public address"), ("224.0.0.1", "multicast"),
])
def test_guard_refuses_every_non_public_address(address, word):
    verdict = guard.decide(t("https://hook.example.com/x"), [address], ALLOW)
    assert verdict.allowed is False
    assert word in verdict.reason


def test_guard_allows_public_https_and_refuses_when_any_address_is_private():
    target = t("https://hook.example.com/x")
    assert guard.decide(target, ["93.184.216.34", "2606:2800:220:1::1"], ()).allowed is True
    assert guard.decide(target, ["93.184.216.34", "10.0.0.1"], ()).allowed is False
    assert guard.decide(target, [], ()).allowed is False


def test_http_only_for_the_exact_host_port_listed_and_then_any_address():
    assert guard.decide(t("http://127.0.0.1:8123/hook"), ["127.0.0.1"], ALLOW).allowed is True
    refused = guard.decide(t("http://127.0.0.1:8124/hook"), ["127.0.0.1"], ALLOW)
    assert refused.allowed is False and "https only" in refused.reason
    assert guard.decide(t("http://93.184.216.34/hook"), ["93.184.216.34"], ALLOW).allowed is False
    # The same host over https on another port is not listed: judged by its address.
    assert guard.decide(t("https://127.0.0.1:8443/hook"), ["127.0.0.1"], ALLOW).allowed is False


def test_signature_matches_an_hmac_computed_outside_python():
    # printf '%s' '1767225600.{"a":1}' | openssl dgst -sha256 -hmac 'whsec_test'
    expected = "6d204545ff126a339c00513d93603299c984074ce1331c3537c3f6c976b49019"
    assert payload.signature("whsec_test", 1767225600, b'{"a":1}') == f"t=1767225600,v1={expected}"


def test_event_id_is_stable_per_alert_and_target_and_differs_between_them():
    a = payload.event_id("budget_alerts/u_2026-12_800", "webhook-aaaaaaaaaaaa")
    assert a == payload.event_id("budget_alerts/u_2026-12_800", "webhook-aaaaaaaaaaaa")
    assert a != payload.event_id("budget_alerts/u_2026-12_800", "webhook-bbbbbbbbbbbb")
    assert a != payload.event_id("budget_alerts/u_2026-12_1000", "webhook-aaaaaaaaaaaa")


def test_event_carries_every_field_of_any_alert_kind_but_not_delivery_bookkeeping():
    doc = {"alert_type": "low_credits", "user_id": "u1", "balance_nanos": 12, "created_at": T0,
           "deliveries": {"x": {}}, "delivery_pending": True}
    event = payload.event("budget_alerts/u1_low", doc, "webhook-aaaaaaaaaaaa")
    assert event["type"] == "low_credits" and event["created"] == int(T0.timestamp())
    assert event["data"] == {"alert_id": "u1_low", "collection": "budget_alerts", "alert_type": "low_credits",
                             "user_id": "u1", "balance_nanos": 12, "created_at": "2026-12-06T12:00:00+00:00"}


def test_slack_body_has_text_and_blocks():
    doc = {"alert_type": "budget_threshold", "user_id": "u1", "month": "2026-12", "current_cost": 8.0,
           "monthly_budget": 10.0}
    body = payload.slack_body("budget_alerts/a", doc, "slack-aaaaaaaaaaaa")
    assert body["text"] == "tokenledger budget_threshold: user u1 in 2026-12: spent $8.00, budget $10.00"
    assert body["blocks"][0]["text"]["text"] == body["text"]
    odd = payload.slack_body("admin_alerts/x", {"alert_type": "x", "message": "<!channel> & <https://evil|click>"}, "s")
    assert odd["text"] == "tokenledger x: the app — &lt;!channel&gt; &amp; &lt;https://evil|click&gt;"


@pytest.mark.parametrize("outcome, status", [
    (plan.Outcome(status_code=200), plan.DELIVERED), (plan.Outcome(status_code=204), plan.DELIVERED),
    (plan.Outcome(status_code=500), plan.RETRYING), (plan.Outcome(status_code=503), plan.RETRYING),
    (plan.Outcome(status_code=429), plan.RETRYING), (plan.Outcome(error="timeout"), plan.RETRYING),
    (plan.Outcome(status_code=400), plan.FAILED), (plan.Outcome(status_code=404), plan.FAILED),
    (plan.Outcome(status_code=302), plan.FAILED), (plan.Outcome(blocked="x is loopback"), plan.BLOCKED),
])
def test_what_is_retried(outcome, status):
    assert plan.classify(outcome) == status


def test_backoff_doubles_and_retry_after_wins_when_longer():
    assert [plan.wait_seconds(n, plan.Outcome(status_code=500), T0) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert plan.wait_seconds(1, plan.Outcome(status_code=429, retry_after="120"), T0) == 120.0
    assert plan.wait_seconds(3, plan.Outcome(status_code=429, retry_after="0"), T0) == 4.0
    http_date = "Sun, 06 Dec 2026 12:05:00 GMT"
    assert plan.wait_seconds(1, plan.Outcome(status_code=503, retry_after=http_date), T0) == 300.0
    assert plan.wait_seconds(1, plan.Outcome(status_code=503, retry_after="999999"), T0) == 6 * 3600.0
    assert plan.wait_seconds(30, plan.Outcome(status_code=500), T0) == 3600.0


def test_state_after_attempts_and_the_sweeps_rules():
    s1 = plan.after_attempt({"status": "pending", "attempts": 0}, plan.Outcome(status_code=500), T0)
    assert (s1["status"], s1["attempts"], s1["last_error"], s1["next_at"]) == (
        "retrying", 1, "HTTP 500", T0 + timedelta(seconds=1))
    assert plan.due(s1, T0) is False and plan.due(s1, T0 + timedelta(seconds=1)) is True
    s2 = plan.after_attempt(s1, plan.Outcome(status_code=200), T0)
    assert (s2["status"], s2["attempts"], s2["delivered_at"]) == ("delivered", 2, T0)
    assert plan.due(s2, T0 + timedelta(days=1)) is False
    b = plan.after_attempt({"attempts": 0}, plan.Outcome(blocked="10.0.0.1 is private"), T0)
    assert (b["status"], b["attempts"], b["last_error"]) == ("blocked", 0, "blocked: 10.0.0.1 is private")
    assert plan.pending({"a": s2, "b": b}) is False and plan.pending({"a": s1}) is True
    assert plan.expired(T0, T0 + timedelta(hours=23, minutes=59)) is False
    assert plan.expired(T0, T0 + timedelta(hours=24)) is True
    assert plan.given_up(s1, T0)["status"] == "failed"
    redirected = plan.after_attempt({"attempts": 0}, plan.Outcome(status_code=302, blocked="to 10.0.0.1"), T0)
    assert (redirected["status"], redirected["attempts"]) == ("blocked", 1)  # one request went out


def _readme_receiver():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = text.split("<!-- webhook-receiver -->", 1)[1].split("<!-- /webhook-receiver -->", 1)[0]
    code = block.split("```python", 1)[1].split("```", 1)[0]
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    return scope["verify"]


def test_the_readme_receiver_accepts_a_signed_event_and_refuses_forged_or_old_ones():
    import time as _time

    verify = _readme_receiver()
    body = payload.body_bytes(payload.event("budget_alerts/a", {"alert_type": "budget_threshold"}, "webhook-x"))
    now = int(_time.time())
    assert verify(b"s3cret", payload.signature("s3cret", now, body), body)["type"] == "budget_threshold"
    for header, raw in ((payload.signature("other", now, body), body),
                        (payload.signature("s3cret", now, body), body + b" "),
                        (payload.signature("s3cret", now - 301, body), body)):
        with pytest.raises(ValueError):
            verify(b"s3cret", header, raw)
