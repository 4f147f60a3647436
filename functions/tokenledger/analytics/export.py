"""How usage rows are written out for export, as CSV lines or JSON (pure: no I/O).

The columns are the row's own fields, in a fixed order so a spreadsheet keeps its layout.
`cost` is written from the exact `cost_nanos` (a decimal string), not from the stored float.
"""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime

from tokenledger import money

COLUMNS = (
    "generation_id",
    "user_id",
    "timestamp",
    "day",
    "month",
    "model",
    "requested_model",
    "provider",
    "feature",
    "endpoint",
    "status",
    "finish_reason",
    "is_free",
    "model_type",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "cost",
    "cost_nanos",
    "estimated_cost",
    "estimated_cost_nanos",
    "cost_source",
    "is_byok",
    "upstream_cost",
    "upstream_cost_nanos",
    "latency_ms",
    "flags",
)


def _usd(nanos: object) -> str | None:
    if not isinstance(nanos, int) or isinstance(nanos, bool):
        return None
    return format(money.from_nanos(nanos).normalize(), "f")


def export_row(doc_id: str, data: dict) -> dict:
    """A stored usage row -> the exported record (JSON-safe values, exact USD strings)."""
    out = {}
    for name in COLUMNS:
        value = data.get(name)
        if isinstance(value, datetime):
            value = value.isoformat()
        out[name] = value
    out["generation_id"] = data.get("generation_id") or doc_id
    out["cost"] = _usd(data.get("cost_nanos"))
    out["estimated_cost"] = _usd(data.get("estimated_cost_nanos"))
    out["upstream_cost"] = _usd(data.get("upstream_cost_nanos"))
    out["flags"] = list(data.get("flags") or [])
    return out


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return value


def csv_lines(rows: list[dict], header: bool = False) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if header:
        writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow([_csv_value(row[name]) for name in COLUMNS])
    return buffer.getvalue()


def json_items(rows: list[dict], first: bool) -> str:
    """Rows as items of a JSON array being streamed: comma-separated, no brackets."""
    text = ",\n".join(json.dumps(row, separators=(",", ":")) for row in rows)
    return text if first or not text else ",\n" + text
