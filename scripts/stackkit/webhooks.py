"""Alert delivery on the local stack: a webhook receiver (scripts/webhook_sink.py) and the
settings that point the functions at it, plus TOKENLEDGER_WEBHOOK_SECRET as a secret.

With the stand-in, unless TOKENLEDGER_ALERT_WEBHOOKS is given, every alert is delivered to the
sink's allowed port (`/hook`, `/flaky` (500 twice when a test arms it), a Slack-form `/slack`,
`/redirect`) and to targets the
SSRF guard must refuse (the sink's second port, which is not allowlisted; `localhost` over https;
the metadata server; an IPv4-mapped loopback address). No traffic leaves 127.0.0.0/8.
TOKENLEDGER_WEBHOOK_SECRET is taken from the environment, else made up for the run; it goes to
functions/.secret.local (never to .env.local) and to the command's environment.
"""
from __future__ import annotations

import os
import re
import secrets
import time
from urllib.parse import urlsplit

from stackkit.base import LOG_DIR, ROOT, VENV_PY
from stackkit.procs import Procs
from stackkit.readiness import wait_until

SECRET = "TOKENLEDGER_WEBHOOK_SECRET"
SECRET_SETTINGS = (SECRET,)  # TOKENLEDGER_* names that are secrets, not params


def webhook_secret() -> str:
    return os.environ.get(SECRET) or "whsec_local_" + secrets.token_hex(16)


def start_sink(procs: Procs, deadline: float) -> tuple[str, str]:
    """(allowed base URL, unlisted base URL) of a started sink."""
    log = LOG_DIR / "webhook_sink.log"
    p = procs.start("webhook sink", [VENV_PY, "-u", ROOT / "scripts" / "webhook_sink.py", "--host", "127.0.0.1"],
                    log, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def ready():
        m = re.search(r"^READY (\S+) (\S+)", log.read_text(errors="replace"), re.M)
        return (m.group(1), m.group(2)) if m else None

    return wait_until("the webhook sink", ready, min(deadline, time.monotonic() + 30), [("webhook sink", p, log)])


def sink_settings(allowed: str, unlisted: str) -> dict[str, str]:
    a, u = urlsplit(allowed), urlsplit(unlisted)
    targets = [
        f"{allowed}/hook", f"{allowed}/flaky", f"slack+{allowed}/slack", f"{allowed}/redirect",
        f"{unlisted}/hook", f"https://localhost:{u.port}/hook", "https://169.254.169.254/latest/meta-data/",
        f"https://[::ffff:127.0.0.1]:{a.port}/hook",
    ]
    return {"TOKENLEDGER_ALERT_WEBHOOKS": ",".join(targets), "TOKENLEDGER_WEBHOOK_ALLOW_HTTP": a.netloc,
            "WEBHOOK_SINK_URL": allowed, "WEBHOOK_SINK_UNLISTED_URL": unlisted}
