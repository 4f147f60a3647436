# Everything runs from functions/venv (made by scripts/bootstrap); the stack (Firebase emulators
# + OpenRouter stand-in) is started and stopped around a command by scripts/stack exec.
PY    := functions/venv/bin/python
STACK := scripts/stack
# pytest's exit code 5 means "no tests collected": not a failure while a suite is still empty.
PYTEST = rc=0; $(PY) -m pytest $(1) -q || rc=$$?; [ $$rc -eq 5 ] || exit $$rc

.PHONY: setup test unit integration coverage demo bench up report screenshots
.NOTPARALLEL:

setup:
	scripts/bootstrap

test: setup unit integration

unit: setup
	@dirs=$$(for d in tests/unit tests/api_http tests/standin; do [ -d $$d ] && printf '%s ' $$d; done); \
	if [ -n "$$dirs" ]; then $(call PYTEST,$$dirs); else echo "no unit tests yet"; fi

# Integration tests, then the browser tests (tests/web: chromium against the Hosting emulator),
# in one start of the stack.
integration:
	@if [ -d tests/integration ]; then $(STACK) exec -- sh -c '$(call PYTEST,tests/integration tests/web)'; \
	else echo "no integration tests yet"; fi

# Line coverage of tokenledger over unit + integration tests, the functions' own processes
# included (see [tool.coverage.run] in pyproject.toml). Not part of `make test`: it is slower.
COV_ENV = COVERAGE_PROCESS_START=$(CURDIR)/pyproject.toml COVERAGE_FILE=$(CURDIR)/.coverage
# The figure is reported even when a test fails (the target still fails then). The 50-worker
# concurrency proof is left to `make test`: with every worker instrumented, firebase-tools
# stalled starting one of the 50 (twice, on a shared 2-core machine); it adds no line coverage.
coverage: setup
	@$(PY) -m coverage erase; rc=0; \
	$(COV_ENV) $(PY) -m pytest tests/unit tests/api_http tests/standin -q || rc=$$?; \
	$(COV_ENV) $(STACK) exec -- $(PY) -m pytest tests/integration -q \
	  --deselect tests/integration/test_budgets_concurrency.py::test_fifty_concurrent_calls_never_overspend || rc=$$?; \
	$(PY) -m coverage combine -q; $(PY) -m coverage report; exit $$rc

# The README's screenshots of the web app (docs/web-*.png), taken by the browser tests.
screenshots: setup
	WEB_SCREENSHOTS=docs $(STACK) exec -- $(PY) -m pytest tests/web -q

demo: setup
	$(STACK) exec -- $(PY) -m scripts.demo

# The benches send more calls per user than the default per-user rate limits allow; the gate's
# work per call is the same with the limits off (only its decision changes).
# No webhook targets in benches (an empty TOKENLEDGER_ALERT_WEBHOOKS keeps the stack's sink off): the
# budget bench writes thousands of alerts, and delivering them would load the machine under the timings.
bench: setup
	TOKENLEDGER_ALERT_WEBHOOKS= TOKENLEDGER_RATE_LIMIT_PER_MINUTE=0 TOKENLEDGER_MAX_IN_FLIGHT=0 $(STACK) exec -- $(PY) -m scripts.bench $(ARGS)

up: setup
	$(STACK) up

report: setup
	$(PY) -m tokenledger.tools.report $(ARGS)
