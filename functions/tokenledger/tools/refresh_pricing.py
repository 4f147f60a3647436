"""Fetch OpenRouter's /models (every page, every modality) and make it the catalog in force.

Does what the scheduled `refresh_pricing` function does, from a terminal: stores the catalog
in model_pricing/current (source, fetched_at), keeps a history entry when anything changed,
and prints the changed prices as a table.

    scripts/stack exec -- functions/venv/bin/python -m tokenledger.tools.refresh_pricing
"""
from __future__ import annotations

import argparse
import sys

from tokenledger import jobs
from tokenledger.openrouter import UpstreamError
from tokenledger.tools.table import print_table


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    print("fetching /models (all pages, all modalities)...", flush=True)
    try:
        result = jobs.refresh_pricing()
    except (UpstreamError, ValueError) as exc:
        print(f"refresh failed, the catalog in force is kept: {exc}", file=sys.stderr)
        return 1
    print(f"{len(result.catalog.models)} models stored as the catalog in force "
          f"(fetched_at {result.catalog.fetched_at.isoformat()})")
    if result.changes:
        print_table(["model", "price", "was", "now"],
                    [[c.model_id, c.field, c.old or "-", c.new or "-"] for c in result.changes],
                    title=f"Changes against the {result.previous_source} catalog",
                    numparse=False)  # prices as OpenRouter writes them: 0.0000006, not 0.000001
    else:
        print(f"no price changes against the {result.previous_source} catalog")
    return 0


if __name__ == "__main__":
    sys.exit(main())
