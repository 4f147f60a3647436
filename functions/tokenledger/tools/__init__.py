"""Operator tools that ship with the product, each `python -m tokenledger.tools.<name>` (or the
console script named in pyproject.toml), all loading configuration and connecting one way
(tools/common.py):

    check_budgets     the scheduled budget check, by hand
    reconcile         settle pending rows against OpenRouter, check the month's drift
    refresh_pricing   fetch /models and make it the catalog in force
    replay            re-record usage logged as `usage_not_recorded`
    report            a month of usage for people: tables, CSV, JSON, a chart

They need the dev requirements (tabulate; matplotlib for the chart); the deployed functions
never import this package.
"""
