# Everything runs from functions/venv (made by scripts/bootstrap); the stack (Firebase emulators
# + OpenRouter stand-in) is started and stopped around a command by scripts/stack exec.
PY    := functions/venv/bin/python
STACK := scripts/stack
# pytest's exit code 5 means "no tests collected": not a failure while a suite is still empty.
PYTEST = rc=0; $(PY) -m pytest $(1) -q || rc=$$?; [ $$rc -eq 5 ] || exit $$rc

.PHONY: setup test unit integration demo bench up report screenshots
.NOTPARALLEL:

setup:
	scripts/bootstrap

test: setup unit integration

unit: setup
	@dirs=$$(for d in tests/unit tests/standin; do [ -d $$d ] && printf '%s ' $$d; done); \
	if [ -n "$$dirs" ]; then $(call PYTEST,$$dirs); else echo "no unit tests yet"; fi

# Integration tests, then the browser tests (tests/web: chromium against the Hosting emulator),
# in one start of the stack.
integration:
	@if [ -d tests/integration ]; then TOKENLEDGER_UPSTREAM_TIMEOUT_S=5 TOKENLEDGER_MAIL_ENABLED=true $(STACK) exec -- sh -c '$(call PYTEST,tests/integration tests/web)'; \
	else echo "no integration tests yet"; fi

# The README's screenshots of the web app (docs/web-*.png), taken by the browser tests.
screenshots: setup
	WEB_SCREENSHOTS=docs $(STACK) exec -- $(PY) -m pytest tests/web -q

demo: setup
	TOKENLEDGER_MAIL_ENABLED=true $(STACK) exec -- $(PY) scripts/demo.py

# The benches send more calls per user than the default per-user rate limits allow; the gate's
# work per call is the same with the limits off (only its decision changes).
bench: setup
	TOKENLEDGER_RATE_LIMIT_PER_MINUTE=0 TOKENLEDGER_MAX_IN_FLIGHT=0 $(STACK) exec -- $(PY) -m scripts.bench $(ARGS)

up: setup
	$(STACK) up

report: setup
	$(PY) scripts/report.py $(ARGS)
