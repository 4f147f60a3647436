"""A small catalog with round prices for the policy tests (USD per token)."""
from tokenledger.pricing.prices import parse_catalog

MODELS = {"data": [
    {"id": "acme/small", "pricing": {"prompt": "0.000001", "completion": "0.000002"},
     "top_provider": {"context_length": 10000, "max_completion_tokens": 1000}},
    {"id": "acme/big", "pricing": {"prompt": "0.00001", "completion": "0.00003", "input_cache_write": "0.0000125",
                                   "request": "0.001", "image": "0.002"},
     "top_provider": {"context_length": 100000, "max_completion_tokens": 4000}},
    {"id": "acme/think", "pricing": {"prompt": "0.000002", "completion": "0.000004", "internal_reasoning": "0.000008"},
     "top_provider": {"context_length": 50000, "max_completion_tokens": None}},
    {"id": "acme/small:free", "pricing": {"prompt": "0", "completion": "0"}, "top_provider": {"context_length": 8000}},
    {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
]}
CATALOG = parse_catalog(MODELS, "openrouter")
HI = [{"role": "user", "content": "Hi"}]
# '{"role":"user","content":"Hi"}' is 30 bytes, + 8 per message
HI_TOKENS = 38
