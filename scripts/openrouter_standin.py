#!/usr/bin/env python3
"""Run the local OpenRouter stand-in.

    python scripts/openrouter_standin.py --host 127.0.0.1 --port 0 --key KEY [--models FILE]

Prints exactly one line, "READY http://HOST:PORT/api/v1", to stdout once listening;
request logs go to stderr. Importable too: create_app(api_key=None, models_path=None).

API (Bearer auth): GET /models, POST /chat/completions, GET /generation?id=, GET /key.
Test control (no auth):
  POST /_control/reset                  clear state, scripts, config
  GET|POST /_control/config             merge: latency_ms, stream_chunk_delay_ms,
                                        generation_delay_s, key_usage_offset,
                                        cache_min_tokens, stream_stall_s, api_key
  POST /_control/script                 {"user": uid|null, "responses": [behaviour...]}
                                        one-shot, FIFO; a user's own queue before null's
  POST /_control/pricing                {"model": id, "pricing": {...}} change a model's prices
                                        (merged; /_control/reset restores them)
  GET  /_control/requests               last 1000 chat requests (authorization redacted)
  GET  /_control/generations[?user=]    generation records
Behaviour keys: status message retry_after error_type metadata | omit_cost cost_null
cost served_model provider usage byok latency_ms drop_connection | stream_error_after
stream_no_usage stream_stall_after (stream_* only act on streamed calls) | unavailable
web_searches (searches the server tool's loop or a model that searches by itself makes)
web_results_found (results each server-tool search finds) image_size ([w, h] of every image).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

# Running as a script puts scripts/ on sys.path already; importing from elsewhere may not.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from standin.app import create_app  # noqa: E402

__all__ = ["create_app", "main"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local OpenRouter API stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--key", default=None, help="API key clients must send (any if omitted)")
    parser.add_argument("--models", default=None, help="catalog JSON in /models format")
    args = parser.parse_args(argv)

    from werkzeug.serving import WSGIRequestHandler, make_server

    class QuietHandler(WSGIRequestHandler):
        # One plain line per request on stderr (no ANSI colours, no timestamps);
        # stdout carries only the READY line.
        def log_request(self, code="-", size="-"):
            sys.stderr.write(f"standin: {self.command} {self.path} {code}\n")

    app = create_app(api_key=args.key, models_path=args.models)
    server = make_server(args.host, args.port, app, threaded=True, request_handler=QuietHandler)
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "") else args.host
    print(f"READY http://{shown_host}:{server.server_port}/api/v1", flush=True)

    # SIGTERM -> clean exit (code 0) instead of a traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
