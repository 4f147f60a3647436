"""Cold start: import time of functions/main.py in a fresh interpreter, its heaviest imports, and
the time from starting the server process to the first chat answer."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import requests

from scripts.bench.served import LOGS, free_port
from scripts.devkit.auth_emulator import AuthEmulator
from scripts.devkit.table import print_table

ROOT = Path(__file__).resolve().parents[2]
RUNS = 3
IMPORT = "import time; t = time.perf_counter(); import main; print((time.perf_counter() - t) * 1000)"
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "cold"}], "max_tokens": 8}


def import_ms() -> float:
    out = subprocess.run([sys.executable, "-c", IMPORT], cwd=ROOT / "functions", capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip().splitlines()[-1])


def heaviest_imports(count: int = 8) -> list[list]:
    """Packages by the import time of their own modules (python -X importtime, self times summed)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import main"], cwd=ROOT / "functions",
                         capture_output=True, text=True, check=True)
    totals: dict[str, int] = {}
    for line in out.stderr.splitlines():
        parts = line[len("import time:"):].split("|") if line.startswith("import time:") else []
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        top = parts[2].strip().split(".")[0]
        totals[top] = totals.get(top, 0) + int(parts[0])
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:count]
    return [[name, f"{us / 1000:.0f}"] for name, us in ranked]


def first_answer_ms(user) -> float:
    port = free_port()
    LOGS.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with open(LOGS / "coldstart.log", "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "functions_framework", "--target", "api", "--source", "main.py", "--port", str(port)],
            cwd=ROOT / "functions", env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT)
    try:
        session = requests.Session()
        while True:
            try:
                r = session.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=BODY, headers=user.headers,
                                 timeout=60)
                r.raise_for_status()
                return (time.perf_counter() - started) * 1000
            except requests.ConnectionError:
                if time.perf_counter() - started > 60:
                    raise SystemExit("the api did not answer within 60 s")
                time.sleep(0.01)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run(stack) -> None:
    print("\n== Cold start (issue 11) ==")
    user = AuthEmulator(stack.auth_host, stack.project).create_user("bench-cold")
    imports = [import_ms() for _ in range(RUNS)]
    firsts = []
    for i in range(RUNS):
        firsts.append(first_answer_ms(user))
        print(f"    process starts: {i + 1}/{RUNS}", flush=True)
    print_table(
        ["measure", "median ms", "runs"],
        [["import functions/main.py (fresh interpreter)", f"{statistics.median(imports):.0f}",
          ", ".join(f"{x:.0f}" for x in imports)],
         ["process start -> first chat answer (functions-framework)", f"{statistics.median(firsts):.0f}",
          ", ".join(f"{x:.0f}" for x in firsts)]],
        title="Cold start",
        numparse=False,
    )
    print_table(["package", "import ms (own modules)"], heaviest_imports(),
                title="Heaviest imports of main.py (python -X importtime, one run)", numparse=False)
