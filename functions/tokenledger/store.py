"""Firestore access: the client (emulator-aware), collection names and document paths."""
from __future__ import annotations

import functools
import zlib

from google.cloud import firestore

from tokenledger import config

USAGE = "usage_tracking"
USER_USAGE = "user_usage"
MONTHS = "months"
DAYS = "days"
MINUTES = "minutes"  # per-user request counters for the rate limit (expire_at: Firestore TTL)
TOTALS = "usage_totals"
SHARDS = "shards"
BUDGETS = "user_budgets"
ALERTS = "budget_alerts"
PRICING = "model_pricing"
PRICING_CURRENT = "current"
MAIL = "mail"
RESERVATIONS = "reservations"
RECONCILIATION = "reconciliation"


@functools.lru_cache(maxsize=1)
def client() -> firestore.Client:
    # google.cloud.firestore.Client uses anonymous credentials by itself when
    # FIRESTORE_EMULATOR_HOST is set (firebase_admin.firestore.client() would demand ADC).
    return firestore.Client(project=config.project_id())


def usage_doc(db: firestore.Client, generation_id: str):
    return db.collection(USAGE).document(generation_id)


def user_month_doc(db: firestore.Client, uid: str, month: str):
    return db.collection(USER_USAGE).document(uid).collection(MONTHS).document(month)


def user_day_doc(db: firestore.Client, uid: str, day: str):
    return db.collection(USER_USAGE).document(uid).collection(DAYS).document(day)


def user_minute_doc(db: firestore.Client, uid: str, minute: str):
    return db.collection(USER_USAGE).document(uid).collection(MINUTES).document(minute)


def shard_index(key: str, shards: int) -> int:
    """Stable shard for a key (crc32: the same generation id always lands on one shard)."""
    return zlib.crc32(key.encode()) % max(shards, 1)


def totals_shard_doc(db: firestore.Client, month: str, shard: int):
    return db.collection(TOTALS).document(month).collection(SHARDS).document(str(shard))


def pricing_doc(db: firestore.Client):
    return db.collection(PRICING).document(PRICING_CURRENT)


def budget_doc(db: firestore.Client, uid: str):
    return db.collection(BUDGETS).document(uid)


def alert_doc(db: firestore.Client, alert_id: str):
    return db.collection(ALERTS).document(alert_id)


def mail_doc(db: firestore.Client, mail_id: str):
    return db.collection(MAIL).document(mail_id)


def reservation_doc(db: firestore.Client, reservation_id: str):
    return db.collection(RESERVATIONS).document(reservation_id)
