"""One config table: Settings, params and the README's table all come from config.SETTINGS."""
from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

from tokenledger import config

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> str:
    text = README.read_text()
    match = re.search(r"<!-- config-table:start -->\n(.*?)\n<!-- config-table:end -->", text, re.S)
    assert match, "README.md lost its config-table markers"
    return match.group(1)


def test_readme_documents_every_setting_exactly_as_declared():
    assert readme_table() == config.markdown_table()


def test_every_setting_fills_one_settings_field():
    fields = [f.name for f in dataclasses.fields(config.Settings)]
    assert fields == ["project_id"] + [s.field for s in config.SETTINGS]
    assert len({s.env for s in config.SETTINGS}) == len(config.SETTINGS)


def test_cors_origins_is_a_documented_setting():
    assert "`TOKENLEDGER_CORS_ORIGINS`" in readme_table()


def test_defaults_are_parsed_from_their_written_form():
    s = config.Settings()
    assert s.max_tokens_cap == 8192
    assert s.default_alert_thresholds == (Decimal("0.8"), Decimal("1.0"))
    assert s.fallback_prompt_price == Decimal("0.00001")
    assert s.default_monthly_budget == Decimal("1") and s.default_enforce is True and s.default_free_daily_requests == 50
    assert s.allowed_models == () and s.store_prompts is False


def test_values_are_read_from_the_environment_by_kind(monkeypatch):
    monkeypatch.setenv("TOKENLEDGER_ALLOWED_MODELS", " openai/* , anthropic/claude-3.5-haiku ")
    monkeypatch.setenv("TOKENLEDGER_DEFAULT_ENFORCE", "true")
    monkeypatch.setenv("TOKENLEDGER_DEFAULT_MONTHLY_BUDGET", "2.50")
    monkeypatch.setenv("OPENROUTER_BASE_URL", "http://127.0.0.1:9/api/v1/")
    config.settings.cache_clear()
    try:
        s = config.settings()
    finally:
        config.settings.cache_clear()
    assert s.allowed_models == ("openai/*", "anthropic/claude-3.5-haiku")
    assert s.default_enforce is True
    assert s.default_monthly_budget == Decimal("2.50")
    assert s.openrouter_base_url == "http://127.0.0.1:9/api/v1"
