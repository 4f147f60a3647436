"""`python -m scripts.bench [section ...]`: run inside the stack (make bench)."""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
for path in (ROOT / "functions", ROOT):
    sys.path.insert(0, str(path))

from scripts.bench import analytics, budgets, hotpath, metering, policy, streaming, web  # noqa: E402
from scripts.devkit import env as stack_env  # noqa: E402

SECTIONS = {"metering": metering.run, "streaming": streaming.run, "analytics": analytics.run, "budgets": budgets.run,
            "policy": policy.run, "hotpath": hotpath.run, "web": web.run}
IN_PROCESS = {"policy"}  # sections that need no stack


def main(argv: list[str]) -> int:
    chosen = argv or list(SECTIONS)
    stack = None if set(chosen) <= IN_PROCESS else stack_env.from_environ(require_standin=True)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
        return 2
    for name in chosen:
        SECTIONS[name](stack)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
