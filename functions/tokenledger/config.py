"""The one place that reads configuration: Firebase params, the OpenRouter secret, env.

Params are declared once at import (declaring them twice raises "Duplicate Parameter"), and
read through `settings()`, which every other module uses instead of touching os.environ.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from decimal import Decimal

from firebase_functions import params

REGION = "us-central1"
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"

OPENROUTER_API_KEY = params.SecretParam("OPENROUTER_API_KEY")
OPENROUTER_BASE_URL = params.StringParam("OPENROUTER_BASE_URL", default=DEFAULT_BASE_URL)
ALLOWED_MODELS = params.StringParam("TOKENLEDGER_ALLOWED_MODELS", default="")
MAX_TOKENS_CAP = params.IntParam("TOKENLEDGER_MAX_TOKENS_CAP", default=8192)
MAX_BODY_BYTES = params.IntParam("TOKENLEDGER_MAX_BODY_BYTES", default=262_144)
MAX_MESSAGES = params.IntParam("TOKENLEDGER_MAX_MESSAGES", default=256)
APP_URL = params.StringParam("TOKENLEDGER_APP_URL", default="")
APP_TITLE = params.StringParam("TOKENLEDGER_APP_TITLE", default="tokenledger")
FALLBACK_PROMPT_PRICE = params.StringParam("TOKENLEDGER_FALLBACK_PROMPT_PRICE", default="0.00001")
FALLBACK_COMPLETION_PRICE = params.StringParam("TOKENLEDGER_FALLBACK_COMPLETION_PRICE", default="0.00003")
STORE_PROMPTS = params.BoolParam("TOKENLEDGER_STORE_PROMPTS", default=False)
USAGE_TTL_DAYS = params.IntParam("TOKENLEDGER_USAGE_TTL_DAYS", default=400)
CATALOG_MAX_AGE_S = params.IntParam("TOKENLEDGER_CATALOG_MAX_AGE_S", default=86_400)
UPSTREAM_TIMEOUT_S = params.IntParam("TOKENLEDGER_UPSTREAM_TIMEOUT_S", default=120)
RECORD_DEADLINE_S = params.IntParam("TOKENLEDGER_RECORD_DEADLINE_S", default=20)
TOTAL_SHARDS = params.IntParam("TOKENLEDGER_TOTAL_SHARDS", default=16)
# Settlement of pending (aborted / incomplete) rows and the monthly drift check.
PENDING_MAX_AGE_S = params.IntParam("TOKENLEDGER_PENDING_MAX_AGE_S", default=86_400)
GENERATION_LOOKUPS = params.IntParam("TOKENLEDGER_GENERATION_LOOKUPS", default=4)
DRIFT_TOLERANCE_PCT = params.StringParam("TOKENLEDGER_DRIFT_TOLERANCE_PCT", default="0.01")
DRIFT_TOLERANCE_USD = params.StringParam("TOKENLEDGER_DRIFT_TOLERANCE_USD", default="1")
# OpenRouter's fee on a BYOK call, as a share of the catalog price (what `cost` then holds).
BYOK_FEE_RATE = params.StringParam("TOKENLEDGER_BYOK_FEE_RATE", default="0.05")

# Analytics: the longest range answered, and rows per query while an export streams.
ANALYTICS_MAX_DAYS = params.IntParam("TOKENLEDGER_ANALYTICS_MAX_DAYS", default=366)
EXPORT_PAGE_SIZE = params.IntParam("TOKENLEDGER_EXPORT_PAGE_SIZE", default=500)

# Schedules of the scheduled functions (fixed at deploy time).
RECONCILE_SCHEDULE = "every 15 minutes"
REFRESH_PRICING_SCHEDULE = "every day 03:17"


CORS_METHODS = ["get", "post", "put", "delete"]


def cors_origins() -> str | list[str]:
    """Browser origins allowed to call the API (TOKENLEDGER_CORS_ORIGINS, comma-separated).

    Read at deploy time, when the CLI loads main.py with functions/.env. "*" is the default:
    the API is authorised by bearer tokens, never cookies, so any origin is safe to allow.
    """
    origins = _split_list(os.environ.get("TOKENLEDGER_CORS_ORIGINS", "*"))
    return "*" if not origins or "*" in origins else list(origins)
# Budgets: defaults for users without a user_budgets document (empty = no budget).
DEFAULT_MONTHLY_BUDGET = params.StringParam("TOKENLEDGER_DEFAULT_MONTHLY_BUDGET", default="")
DEFAULT_ALERT_THRESHOLDS = params.StringParam("TOKENLEDGER_DEFAULT_ALERT_THRESHOLDS", default="0.8,1.0")
DEFAULT_ENFORCE = params.BoolParam("TOKENLEDGER_DEFAULT_ENFORCE", default=False)
DEFAULT_FREE_DAILY_REQUESTS = params.IntParam("TOKENLEDGER_DEFAULT_FREE_DAILY_REQUESTS", default=0)
RESERVATION_TTL_S = params.IntParam("TOKENLEDGER_RESERVATION_TTL_S", default=900)
MAIL_ENABLED = params.BoolParam("TOKENLEDGER_MAIL_ENABLED", default=False)
BUDGET_CHECK_PAGE_SIZE = params.IntParam("TOKENLEDGER_BUDGET_CHECK_PAGE_SIZE", default=500)
# The schedule is fixed when the function is deployed (on_schedule takes a plain string), so it
# comes from the deploy-time environment (functions/.env), not from a runtime param.
BUDGET_CHECK_SCHEDULE = os.environ.get("TOKENLEDGER_BUDGET_CHECK_SCHEDULE", "every 60 minutes")


@dataclass(frozen=True)
class Settings:
    """Every tunable the package uses, with the defaults a new deployment gets."""

    project_id: str = "demo-tokenledger"
    openrouter_base_url: str = DEFAULT_BASE_URL
    openrouter_api_key: str = ""
    allowed_models: tuple[str, ...] = ()
    max_tokens_cap: int = 8192
    max_body_bytes: int = 262_144
    max_messages: int = 256
    app_url: str = ""
    app_title: str = "tokenledger"
    fallback_prompt_price: Decimal = Decimal("0.00001")
    fallback_completion_price: Decimal = Decimal("0.00003")
    store_prompts: bool = False
    usage_ttl_days: int = 400
    catalog_max_age_s: int = 86_400
    upstream_timeout_s: int = 120
    record_deadline_s: int = 20
    total_shards: int = 16
    pending_max_age_s: int = 86_400  # a pending row unresolved this long is settled at its estimate
    generation_lookups: int = 4  # GET /generation attempts per row per run (back-off between)
    drift_tolerance_pct: Decimal = Decimal("0.01")
    drift_tolerance_usd: Decimal = Decimal("1")
    byok_fee_rate: Decimal = Decimal("0.05")
    analytics_max_days: int = 366  # longest from..to range a usage summary or export answers
    export_page_size: int = 500  # rows per Firestore query while streaming an export
    default_monthly_budget: Decimal | None = None
    default_alert_thresholds: tuple[Decimal, ...] = (Decimal("0.8"), Decimal("1.0"))
    default_enforce: bool = False
    default_free_daily_requests: int = 0  # 0: no cap on free-model calls
    reservation_ttl_s: int = 900
    mail_enabled: bool = False
    budget_check_page_size: int = 500
    extra: dict = field(default_factory=dict)


def project_id() -> str:
    return (
        os.environ.get("GCLOUD_PROJECT")
        or os.environ.get("GOOGLE_CLOUD_PROJECT")
        or os.environ.get("GCP_PROJECT")
        or "demo-tokenledger"
    )


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(
        project_id=project_id(),
        openrouter_base_url=OPENROUTER_BASE_URL.value.rstrip("/"),
        openrouter_api_key=OPENROUTER_API_KEY.value or "",
        allowed_models=_split_list(ALLOWED_MODELS.value),
        max_tokens_cap=MAX_TOKENS_CAP.value,
        max_body_bytes=MAX_BODY_BYTES.value,
        max_messages=MAX_MESSAGES.value,
        app_url=APP_URL.value,
        app_title=APP_TITLE.value,
        fallback_prompt_price=Decimal(FALLBACK_PROMPT_PRICE.value),
        fallback_completion_price=Decimal(FALLBACK_COMPLETION_PRICE.value),
        store_prompts=STORE_PROMPTS.value,
        usage_ttl_days=USAGE_TTL_DAYS.value,
        catalog_max_age_s=CATALOG_MAX_AGE_S.value,
        upstream_timeout_s=UPSTREAM_TIMEOUT_S.value,
        record_deadline_s=RECORD_DEADLINE_S.value,
        total_shards=TOTAL_SHARDS.value,
        pending_max_age_s=PENDING_MAX_AGE_S.value,
        generation_lookups=GENERATION_LOOKUPS.value,
        drift_tolerance_pct=Decimal(DRIFT_TOLERANCE_PCT.value),
        drift_tolerance_usd=Decimal(DRIFT_TOLERANCE_USD.value),
        byok_fee_rate=Decimal(BYOK_FEE_RATE.value),
        analytics_max_days=ANALYTICS_MAX_DAYS.value,
        export_page_size=EXPORT_PAGE_SIZE.value,
        default_monthly_budget=Decimal(DEFAULT_MONTHLY_BUDGET.value) if DEFAULT_MONTHLY_BUDGET.value.strip() else None,
        default_alert_thresholds=tuple(Decimal(t) for t in _split_list(DEFAULT_ALERT_THRESHOLDS.value)),
        default_enforce=DEFAULT_ENFORCE.value,
        default_free_daily_requests=DEFAULT_FREE_DAILY_REQUESTS.value,
        reservation_ttl_s=RESERVATION_TTL_S.value,
        mail_enabled=MAIL_ENABLED.value,
        budget_check_page_size=BUDGET_CHECK_PAGE_SIZE.value,
    )


def is_emulator() -> bool:
    """True only inside the Firebase Functions emulator (firebase-tools sets this variable)."""
    return os.environ.get("FUNCTIONS_EMULATOR") == "true"


def init() -> None:
    """Process start-up for the deployed functions: initialise firebase_admin once."""
    import firebase_admin

    if not firebase_admin._apps:  # a second import of main.py must not re-initialise
        firebase_admin.initialize_app(options={"projectId": project_id()})
