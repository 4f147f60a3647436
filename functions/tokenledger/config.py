"""The one place that reads configuration: every setting declared once, in SETTINGS.

Each row names the environment variable, the Settings field it fills, its kind, its default and
what it does. From the table come the Firebase params (declared once at import: declaring one
twice raises "Duplicate Parameter"), the `Settings` dataclass every module reads instead of
os.environ, and the README's configuration table (tests/unit/test_config.py keeps them equal).
"""
from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Callable

from firebase_functions import params

REGION = "us-central1"
DEFAULT_BASE_URL = "https://openrouter.ai/api/v1"
CORS_METHODS = ["get", "post", "put", "delete"]
# Schedules of the scheduled functions (fixed at deploy time).
RECONCILE_SCHEDULE = "every 15 minutes"
REFRESH_PRICING_SCHEDULE = "every day 03:17"


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _bool(value: str) -> bool:
    return value.strip().lower() in ("1", "true", "yes", "on")


def _optional_decimal(value: str) -> Decimal | None:
    return Decimal(value) if value.strip() else None


def _decimals(value: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(item) for item in _split_list(value))


# How a value is read from its string, and how README shows the default.
KINDS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "url": lambda v: v.rstrip("/"),
    "int": int,
    "bool": _bool,
    "decimal": Decimal,
    "optional_decimal": _optional_decimal,
    "list": _split_list,
    "decimals": _decimals,
}


@dataclass(frozen=True)
class Setting:
    env: str  # the variable in functions/.env (or the secret's name)
    field: str  # the Settings attribute
    kind: str  # a key of KINDS
    default: str  # as written in functions/.env
    doc: str
    source: str = "param"  # param (runtime) | secret | deploy (read when `firebase deploy` loads main.py)


SETTINGS: tuple[Setting, ...] = (
    Setting("OPENROUTER_API_KEY", "openrouter_api_key", "str", "",
            "your OpenRouter key: `firebase functions:secrets:set OPENROUTER_API_KEY`; never logged or returned",
            source="secret"),
    Setting("OPENROUTER_BASE_URL", "openrouter_base_url", "url", DEFAULT_BASE_URL, "where OpenRouter is"),
    Setting("TOKENLEDGER_ALLOWED_MODELS", "allowed_models", "list", "",
            "comma-separated model ids or globs (`openai/*,anthropic/claude-3.5-haiku`); empty = every model "
            "in the catalog"),
    Setting("TOKENLEDGER_MAX_TOKENS_CAP", "max_tokens_cap", "int", "8192",
            "largest `max_tokens` a client may ask for"),
    Setting("TOKENLEDGER_MAX_BODY_BYTES", "max_body_bytes", "int", "262144", "larger request bodies get 413"),
    Setting("TOKENLEDGER_MAX_MESSAGES", "max_messages", "int", "256", "messages per request"),
    Setting("TOKENLEDGER_APP_URL", "app_url", "str", "", "sent as `HTTP-Referer` for OpenRouter's attribution"),
    Setting("TOKENLEDGER_APP_TITLE", "app_title", "str", "tokenledger",
            "sent as `X-OpenRouter-Title` for OpenRouter's attribution"),
    Setting("TOKENLEDGER_FALLBACK_PROMPT_PRICE", "fallback_prompt_price", "decimal", "0.00001",
            "USD per prompt token for a call that came back without a cost for a model the catalog does not "
            "know (the row is flagged `unpriced`; never a silent $0)"),
    Setting("TOKENLEDGER_FALLBACK_COMPLETION_PRICE", "fallback_completion_price", "decimal", "0.00003",
            "USD per completion token, likewise"),
    Setting("TOKENLEDGER_STORE_PROMPTS", "store_prompts", "bool", "false",
            "keep the messages in the row's `metadata` (off: only sizes and parameters)"),
    Setting("TOKENLEDGER_USAGE_TTL_DAYS", "usage_ttl_days", "int", "400",
            "raw rows expire (`expire_at`, Firestore TTL); rollups stay"),
    Setting("TOKENLEDGER_CATALOG_MAX_AGE_S", "catalog_max_age_s", "int", "86400",
            "a stored price catalog older than this is refetched from `/models`"),
    Setting("TOKENLEDGER_UPSTREAM_TIMEOUT_S", "upstream_timeout_s", "int", "120", "OpenRouter timeout (then 504)"),
    Setting("TOKENLEDGER_RECORD_DEADLINE_S", "record_deadline_s", "int", "20",
            "how long transient Firestore errors are retried before the call is answered with "
            "`X-Usage-Recorded: false`"),
    Setting("TOKENLEDGER_OUTBOX_ENABLED", "outbox_enabled", "bool", "true",
            "a call the ledger could not commit is published to the `usage-outbox` Pub/Sub topic and committed "
            "by `heal_usage` (`X-Usage-Recorded: queued`); off: only the ERROR log and the replay tool have it"),
    Setting("TOKENLEDGER_OUTBOX_PUBLISH_TIMEOUT_S", "outbox_publish_timeout_s", "int", "5",
            "how long the API tries to publish to the outbox before it falls back to the log (`false`)"),
    Setting("TOKENLEDGER_OUTBOX_COMMIT_DEADLINE_S", "outbox_commit_deadline_s", "int", "120",
            "how long one delivery of an outbox record retries its commit before Pub/Sub redelivers it"),
    Setting("TOKENLEDGER_OUTBOX_DEAD_LETTER_AFTER_S", "outbox_dead_letter_after_s", "int", "86400",
            "an outbox record still not committed this long after it was queued goes to the "
            "`usage-outbox-dead-letter` topic and raises the `ledger_dead_letter` admin alert"),
    Setting("TOKENLEDGER_TOTAL_SHARDS", "total_shards", "int", "32",
            "shards of the global month counters: each takes about one write a second, so 32 carry ~30 calls/s "
            "of the whole app; raise it for more (readers list the shards, so any change is safe)"),
    Setting("TOKENLEDGER_PENDING_MAX_AGE_S", "pending_max_age_s", "int", "86400",
            "a pending row (aborted stream) that /generation cannot settle this long is settled at its estimate"),
    Setting("TOKENLEDGER_GENERATION_LOOKUPS", "generation_lookups", "int", "4",
            "`GET /generation` attempts per pending row per reconcile run (back-off between)"),
    Setting("TOKENLEDGER_DRIFT_TOLERANCE_PCT", "drift_tolerance_pct", "decimal", "0.01",
            "ledger vs OpenRouter `/key` drift tolerated as a share of the month's usage..."),
    Setting("TOKENLEDGER_DRIFT_TOLERANCE_USD", "drift_tolerance_usd", "decimal", "1",
            "...or in USD, whichever is larger; above it an `admin_alerts/ledger_drift_{month}` is written"),
    Setting("TOKENLEDGER_BYOK_FEE_RATE", "byok_fee_rate", "decimal", "0.05",
            "OpenRouter's fee on a BYOK call as a share of the catalog price (used in estimates)"),
    Setting("TOKENLEDGER_ANALYTICS_MAX_DAYS", "analytics_max_days", "int", "366",
            "longest from..to range a usage summary or export answers"),
    Setting("TOKENLEDGER_EXPORT_PAGE_SIZE", "export_page_size", "int", "500",
            "rows per Firestore query while an export streams"),
    Setting("TOKENLEDGER_DEFAULT_MONTHLY_BUDGET", "default_monthly_budget", "optional_decimal", "1",
            "USD budget of users without a `user_budgets` document (empty = none); with the default "
            "enforcement a fresh deployment is not an open proxy"),
    Setting("TOKENLEDGER_DEFAULT_ALERT_THRESHOLDS", "default_alert_thresholds", "decimals", "0.8,1.0",
            "shares of the budget at which alerts are written"),
    Setting("TOKENLEDGER_DEFAULT_ENFORCE", "default_enforce", "bool", "true",
            "the default budget is a hard cap (402 before OpenRouter is called)"),
    Setting("TOKENLEDGER_DEFAULT_FREE_DAILY_REQUESTS", "default_free_daily_requests", "int", "50",
            "free-model calls per user per UTC day (0 = no cap)"),
    Setting("TOKENLEDGER_BUDGET_CACHE_S", "budget_cache_s", "int", "60",
            "how long an instance keeps a user's budget document (an admin PUT through the same instance "
            "replaces it at once; other instances see it within this time)"),
    Setting("TOKENLEDGER_PLAN_CLAIM", "plan_claim", "str", "stripeRole",
            "custom claim of the user's ID token naming their plan (`plans/{planId}`); the Stripe extension "
            "sets `stripeRole`"),
    Setting("TOKENLEDGER_DEFAULT_PLAN", "default_plan", "str", "free",
            "plan of users whose token names none (or names a plan that does not exist); no such plan "
            "document: the configured defaults alone"),
    Setting("TOKENLEDGER_PLAN_CACHE_S", "plan_cache_s", "int", "60",
            "how long an instance keeps the plans (one query of `plans` per instance per this many seconds; "
            "an admin PUT/DELETE through the same instance is in force at once)"),
    Setting("TOKENLEDGER_BUDGET_FAIL_OPEN", "budget_fail_open", "bool", "false",
            "when a budget cannot be read (Firestore unreachable), let the call go on unchecked instead of "
            "503 `budget_unavailable`; only for deployments that prefer availability over the cap"),
    Setting("TOKENLEDGER_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute", "int", "60",
            "chat requests per user per minute (0 = no limit); a budget document may set its own"),
    Setting("TOKENLEDGER_MAX_IN_FLIGHT", "max_in_flight", "int", "8",
            "chat calls per user in progress at once (0 = no limit); a budget document may set its own"),
    Setting("TOKENLEDGER_MAX_FEATURES", "max_features", "int", "100",
            "distinct `feature` names per user and month; further names are counted under `other`"),
    Setting("TOKENLEDGER_REVOCATION_CACHE_S", "revocation_cache_s", "int", "60",
            "how long an instance trusts that a user is neither disabled nor has revoked tokens (one Auth "
            "lookup per user per instance per this many seconds)"),
    Setting("TOKENLEDGER_ENFORCE_APP_CHECK", "enforce_app_check", "bool", "false",
            "require a valid Firebase App Check token (`X-Firebase-AppCheck`) on every API call"),
    Setting("TOKENLEDGER_RESERVATION_TTL_S", "reservation_ttl_s", "int", "900",
            "a budget reservation left by a crashed call is released after this long"),
    Setting("TOKENLEDGER_LEASE_CALLS", "lease_calls", "int", "8",
            "a gated call reserves a lease of this many of its worst cases (at most a quarter of the "
            "headroom), and the user's next calls on the instance are admitted against it with no commit "
            "before the call; 0: one reservation per call (docs/budgets.md)"),
    Setting("TOKENLEDGER_MAIL_ENABLED", "mail_enabled", "bool", "false",
            "write a `mail/{id}` document (Trigger Email extension format) with each alert"),
    Setting("TOKENLEDGER_ALERT_WEBHOOKS", "alert_webhooks", "list", "",
            "comma-separated URLs every alert is delivered to (signed JSON event; a `hooks.slack.com` host or a "
            "`slack+https://` prefix gets Slack's incoming-webhook body); empty = none (docs/alerts.md)"),
    Setting("TOKENLEDGER_WEBHOOK_SECRET", "webhook_secret", "str", "",
            "key of the `X-Tokenledger-Signature` HMAC-SHA256: `firebase functions:secrets:set "
            "TOKENLEDGER_WEBHOOK_SECRET`; never logged or sent", source="secret"),
    Setting("TOKENLEDGER_WEBHOOK_ALLOW_HTTP", "webhook_allow_http", "list", "",
            "`host:port` pairs a webhook may reach over plain http and on a non-public address (local receivers "
            "in development and tests); everything else must be https to a public address"),
    Setting("TOKENLEDGER_FORECAST_DAYS", "forecast_days", "int", "7",
            "a `budget_forecast` projects the month's end from the average of the last this-many days "
            "(0 = no forecasts)"),
    Setting("TOKENLEDGER_SPIKE_FACTOR", "spike_factor", "decimal", "5",
            "a `usage_spike` is written when a day's cost is more than this many times the user's median daily "
            "cost over the previous 14 days (0 = no spike alerts)..."),
    Setting("TOKENLEDGER_SPIKE_MIN_USD", "spike_min_usd", "decimal", "0.50",
            "...and above this many USD"),
    Setting("TOKENLEDGER_APP_MONTHLY_BUDGET", "app_monthly_budget", "optional_decimal", "",
            "USD the whole app may spend in a month, for the operator's `app_spend` alerts (empty = none)"),
    Setting("TOKENLEDGER_APP_ALERT_THRESHOLDS", "app_alert_thresholds", "decimals", "0.8,1.0",
            "shares of `TOKENLEDGER_APP_MONTHLY_BUDGET` at which an `app_spend` alert is written"),
    Setting("TOKENLEDGER_BUDGET_CHECK_PAGE_SIZE", "budget_check_page_size", "int", "500",
            "budgets read per page by the scheduled check"),
    Setting("TOKENLEDGER_ALLOW_WEB_SEARCH", "allow_web_search", "bool", "false",
            "let calls use web search (the `web` plugin, `:online`, the `openrouter:web_search` server tool); "
            "off: 400 `web_search_disabled`"),
    Setting("TOKENLEDGER_WEB_SEARCH_MAX_PRICE", "web_search_max_price", "decimal", "0.02",
            "USD a search of `TOKENLEDGER_WEB_SEARCH_MAX_RESULTS` results may cost at most (Exa: $4 per 1,000 "
            "results); reserved per result"),
    Setting("TOKENLEDGER_WEB_SEARCH_MAX_RESULTS", "web_search_max_results", "int", "5",
            "results per search, forced upstream as `max_results`"),
    Setting("TOKENLEDGER_WEB_SEARCH_MAX_SEARCHES", "web_search_max_searches", "int", "3",
            "searches one call may run with the server tool (forced upstream as `max_total_results`)"),
    Setting("TOKENLEDGER_IMAGE_PROMPT_TOKENS", "image_prompt_tokens", "int", "16384",
            "prompt tokens reserved per image for a model family whose image formula is not known (beside its "
            "per-image price); known families are reserved at their documented maximum (docs/budgets.md)"),
    Setting("TOKENLEDGER_MAX_IMAGES", "max_images", "int", "16", "images per request"),
    Setting("TOKENLEDGER_WEB_SEARCH_MAX_CHARACTERS", "web_search_max_characters", "int", "5000",
            "characters of content per web search result, forced upstream as the server tool's `max_characters` "
            "(Exa's `search_context_size` low); reserved as that many prompt tokens per result, and "
            "`search_context_size` above it is refused"),
    Setting("TOKENLEDGER_SEARCH_MODELS", "search_models", "list", "",
            "models that search the web by themselves with no documented bound (deep research) the operator "
            "accepts, exact ids; others are refused (403 `search_model_not_listed`); needs "
            "`TOKENLEDGER_ALLOW_WEB_SEARCH` (OpenAI's search previews, one search per request, need no listing)"),
    Setting("TOKENLEDGER_MAX_SEARCHES_PER_CALL", "max_searches_per_call", "int", "10",
            "searches a listed searching model is reserved for per call (its `web_search` price each, and one "
            "internal step reading a whole context per search); more are billed past the reservation"),
    Setting("TOKENLEDGER_MAX_BODY_DEPTH", "max_body_depth", "int", "32",
            "deepest JSON nesting a request body may have (400 `body_too_deep`)"),
    Setting("TOKENLEDGER_MAX_BODY_ELEMENTS", "max_body_elements", "int", "20000",
            "JSON values a request body may hold in all (413 `too_many_elements`)"),
    Setting("TOKENLEDGER_CATALOG_MISS_REFRESH_S", "catalog_miss_refresh_s", "int", "60",
            "a model missing from the catalog triggers a `/models` refresh at most this often per instance"),
    Setting("TOKENLEDGER_CREDITS_PER_USD", "credits_per_usd", "decimal", "1.0",
            "USD of prepaid credit granted per USD a Stripe payment received, when its metadata carries no "
            "`tokenledger_credits` (docs/credits.md); payments in other currencies are left for an admin"),
    Setting("TOKENLEDGER_LOW_CREDITS_USD", "low_credits_usd", "decimal", "1.0",
            "a low-balance alert is written once when a wallet's balance falls below this (per user: "
            "`low_balance_alert` of POST /v1/admin/credits/{uid})"),
    Setting("TOKENLEDGER_BUDGET_CHECK_SCHEDULE", "budget_check_schedule", "str", "every 60 minutes",
            "schedule of `check_budgets`", source="deploy"),
    Setting("TOKENLEDGER_FOLD_SCHEDULE", "fold_schedule", "str", "every 5 minutes",
            "schedule of `fold_shards`, which moves a cooled-down hot user's shards back into their base month "
            "and day documents (README, \"Reading your own data\")", source="deploy"),
    Setting("TOKENLEDGER_FOLD_COOL_S", "fold_cool_s", "int", "120",
            "a period's shards are folded into its base document once none of them was written for this long"),
    Setting("TOKENLEDGER_CORS_ORIGINS", "cors_origins", "list", "*",
            "browser origins allowed to call the API from another origin, comma-separated "
            "(`https://app.example.com,http://localhost:5173`). The default `*` allows any origin, which is "
            "safe because the API is authorised by the bearer ID token, never by cookies: a foreign page gains "
            "nothing it could not do with the token itself. Every answer lists `X-Usage-Recorded`, "
            "`X-Generation-Id`, `Retry-After`, `X-Tokenledger-Overhead-Ms` and `X-Tokenledger-Downgraded` in "
            "`Access-Control-Expose-Headers` so such a page can read "
            "them. The app behind Hosting's `/api/**` rewrite is same-origin and needs no CORS",
            source="deploy"),
    Setting("TOKENLEDGER_API_CONCURRENCY", "api_concurrency", "int", "40",
            "requests one `api` instance serves at once (Cloud Run concurrency); also the server's thread count "
            "(functions-framework's THREADS, otherwise 4 per CPU: 4 calls at a time, the rest queued)",
            source="deploy"),
    Setting("TOKENLEDGER_API_MIN_INSTANCES", "api_min_instances", "int", "0",
            "`api` instances kept warm (1 spares the first call after idle a cold start of a few seconds, "
            "for the price of one idle instance)", source="deploy"),
)


def _field_type(kind: str) -> Any:
    return {"int": int, "bool": bool, "decimal": Decimal, "list": tuple, "decimals": tuple}.get(kind, Any)


# Every tunable the package uses, with the defaults a new deployment gets: built from SETTINGS.
Settings = dataclasses.make_dataclass(
    "Settings",
    [("project_id", str, dataclasses.field(default="demo-tokenledger"))]
    + [(s.field, _field_type(s.kind), dataclasses.field(default=KINDS[s.kind](s.default))) for s in SETTINGS],
    frozen=True,
)
Settings.__module__ = __name__
Settings.__doc__ = "Every tunable the package uses; fields and defaults come from config.SETTINGS."

# Runtime params, declared once. Values are strings in functions/.env and parsed by KINDS.
_PARAMS = {
    s.env: params.SecretParam(s.env) if s.source == "secret" else params.StringParam(s.env, default=s.default)
    for s in SETTINGS
    if s.source != "deploy"
}
OPENROUTER_API_KEY = _PARAMS["OPENROUTER_API_KEY"]
WEBHOOK_SECRET = _PARAMS["TOKENLEDGER_WEBHOOK_SECRET"]
# The sweep that re-drives undelivered alerts (notify/sweep.py).
ALERT_SWEEP_SCHEDULE = "every 10 minutes"


def _deploy_value(setting: Setting) -> Any:
    return KINDS[setting.kind](os.environ.get(setting.env, setting.default))


FOLD_SCHEDULE = _deploy_value(next(s for s in SETTINGS if s.env == "TOKENLEDGER_FOLD_SCHEDULE"))
BUDGET_CHECK_SCHEDULE = _deploy_value(next(s for s in SETTINGS if s.env == "TOKENLEDGER_BUDGET_CHECK_SCHEDULE"))
API_CONCURRENCY = _deploy_value(next(s for s in SETTINGS if s.env == "TOKENLEDGER_API_CONCURRENCY"))
API_MIN_INSTANCES = _deploy_value(next(s for s in SETTINGS if s.env == "TOKENLEDGER_API_MIN_INSTANCES"))


def serve_threads() -> None:
    """functions-framework sizes its server (gunicorn threads) from THREADS after main.py is
    imported, by default 4 per CPU: with one vCPU, 4 calls at a time while Cloud Run sends up to
    `concurrency`, so a fifth caller would wait for a whole LLM answer. Match the two."""
    os.environ.setdefault("THREADS", str(API_CONCURRENCY))


def cors_origins() -> str | list[str]:
    """Browser origins allowed to call the API, read at deploy time (the CLI loads main.py with
    functions/.env). "*" when empty or listed."""
    origins = _deploy_value(next(s for s in SETTINGS if s.env == "TOKENLEDGER_CORS_ORIGINS"))
    return "*" if not origins or "*" in origins else list(origins)


def project_id() -> str:
    return (
        os.environ.get("GCLOUD_PROJECT")
        or os.environ.get("GOOGLE_CLOUD_PROJECT")
        or os.environ.get("GCP_PROJECT")
        or "demo-tokenledger"
    )


def _param_value(setting: Setting) -> Any:
    if setting.source == "deploy":
        return _deploy_value(setting)
    raw = _PARAMS[setting.env].value
    return KINDS[setting.kind]("" if raw is None else str(raw))


@functools.lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(project_id=project_id(), **{s.field: _param_value(s) for s in SETTINGS})


def markdown_table() -> str:
    """The README's configuration table, made from SETTINGS."""
    rows = ["| name | kind | default | what |", "|---|---|---|---|"]
    for s in SETTINGS:
        kind = {"secret": "secret (`SecretParam`)", "deploy": "deploy-time env"}.get(s.source, "param")
        default = "—" if s.source == "secret" else (f"`{s.default}`" if s.default else "empty")
        rows.append(f"| `{s.env}` | {kind} | {default} | {s.doc} |")
    return "\n".join(rows)


# Set by the emulators' clients; in production they would point the functions at a fake backend.
# PUBSUB_EMULATOR_HOST too: a record "queued" into a fake Pub/Sub would be lost (metering/outbox.py).
EMULATOR_HOSTS = ("FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST")


def is_production(env=None) -> bool:
    """Running on Cloud Run / Cloud Functions. `K_SERVICE` alone does not say so (the Functions
    emulator sets it too); the emulator also sets FIREBASE_DEBUG_MODE, a `FIREBASE_` variable
    that `firebase deploy` refuses in functions/.env, so a deployment cannot fake it."""
    env = os.environ if env is None else env
    return bool(env.get("K_SERVICE")) and env.get("FIREBASE_DEBUG_MODE") != "true"


def is_emulator(env=None) -> bool:
    """True only inside the Firebase Functions emulator: never in production, whatever the env holds
    (FUNCTIONS_EMULATOR is not a reserved name, so a deployed .env could set it)."""
    env = os.environ if env is None else env
    return env.get("FUNCTIONS_EMULATOR") == "true" and env.get("FIREBASE_DEBUG_MODE") == "true" \
        and not is_production(env)


class UnsafeEnvironment(RuntimeError):
    """Production with emulator variables set: the function must not start."""


def check_environment(env=None) -> None:
    """Refuse to start in production with an emulator host set (it would send every token check and
    ledger write to a fake backend that accepts anything)."""
    env = os.environ if env is None else env
    if is_production(env):
        present = [name for name in EMULATOR_HOSTS if env.get(name)]
        if present:
            raise UnsafeEnvironment(f"production (K_SERVICE set) with emulator variables {present}: refusing to start")


def init() -> None:
    """Process start-up for the deployed functions: check the environment, initialise firebase_admin once."""
    import firebase_admin

    check_environment()

    if not firebase_admin._apps:  # a second import of main.py must not re-initialise
        firebase_admin.initialize_app(options={"projectId": project_id()})
