"""Property: for every request shape of the corpus, what the stand-in (billing as OpenRouter
documents, scripted to bill as much as it may) charges for the exact upstream body the policy
produced is at most the reservation. Exact: nano-dollars as Decimals."""
from __future__ import annotations

import pytest

from scripts.devkit.ceiling_corpus import Corpus, shapes

CORPUS = Corpus()


@pytest.mark.parametrize("shape", shapes(), ids=lambda s: s.name)
def test_charge_never_exceeds_the_reservation(shape):
    outcome = CORPUS.run(shape)
    assert outcome.charge_nanos <= outcome.worst_nanos
    # a call the gate lets through as free is billed nothing
    if outcome.is_free:
        assert outcome.charge_nanos == 0


def test_the_corpus_exercises_paid_free_and_server_tool_calls():
    outcomes = [CORPUS.run(shape) for shape in shapes()]
    assert sum(o.is_free for o in outcomes) == 1  # only the plain free model call
    web = [o for o in outcomes if "web" in o.name and "free" in o.name]
    assert web and all(o.charge_nanos > 0 and not o.is_free for o in web)
