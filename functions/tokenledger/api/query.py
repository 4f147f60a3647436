"""Query parameters, validated by pydantic models like the bodies: one rule per parameter
(`month`, `limit`, `page_token`, `from`/`to`, `granularity`, `format`) whatever route reads it,
and one 400 per parameter, `invalid_<name>`, saying what is wrong."""
from __future__ import annotations

from typing import Annotated, Literal, TypeVar

from flask import request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from tokenledger.api.errors import ApiError

MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
MAX_LIMIT = 100


def _whole_number(value: object) -> object:
    # Query values arrive as text: only plain digits are a number here ("1.0", " 5", "1e3" are not).
    if isinstance(value, str) and not value.isdigit():
        raise ValueError("not a whole number")
    return value


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
# `?user=&page_token=` reads as if they were not given at all.
Optional = Annotated[str | None, BeforeValidator(lambda value: value or None)]

# What each parameter must look like, said once for every route.
PROBLEMS = {
    "month": "'month' must be a month as YYYY-MM, e.g. 2026-11.",
    "limit": f"'limit' must be a whole number from 1 to {MAX_LIMIT}.",
    "granularity": "'granularity' must be one of day, month.",
    "format": "'format' must be csv or json.",
}


class Query(BaseModel):
    # Unknown parameters are ignored (a cache-buster must not break a call).
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class MonthQuery(Query):
    month: str | None = Field(default=None, pattern=MONTH_PATTERN)  # None: the current month


class TopUsersQuery(MonthQuery):
    limit: WholeNumber = Field(default=10, ge=1, le=MAX_LIMIT)


class PageQuery(Query):
    limit: WholeNumber = Field(default=20, ge=1, le=MAX_LIMIT)
    page_token: Optional = None


class AlertsQuery(PageQuery, MonthQuery):
    pass


class SpanQuery(Query):
    # The dates themselves are checked by analytics.figures.date_range (real days, order, length).
    start: Optional = Field(default=None, alias="from")
    end: Optional = Field(default=None, alias="to")
    user: Optional = None


class UsageQuery(SpanQuery):
    granularity: Literal["day", "month"] = "day"


class ExportQuery(SpanQuery):
    format: Literal["csv", "json"] = "csv"


Q = TypeVar("Q", bound=Query)


def parse(model: type[Q]) -> Q:
    """The request's query string as `model`, or a 400 naming the first bad parameter."""
    # The first value of each name, as Flask's request.args.get reads it.
    values = {name: request.args.get(name) for name in request.args}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        name = str(exc.errors()[0]["loc"][0])
        raise ApiError(400, f"invalid_{name}", PROBLEMS.get(name, f"'{name}' is not valid."))
