import pytest

from tokenledger.api.errors import ApiError
from tokenledger.api.validation import allowed_model, chat_request, decode_body, is_allowed
from tokenledger.config import Settings
from tokenledger.pricing.prices import parse_catalog

CATALOG = parse_catalog(
    {
        "data": [
            {"id": "openai/gpt-4o-mini", "pricing": {"prompt": "0.00000015", "completion": "0.0000006"}},
            {"id": "anthropic/claude-3.5-haiku", "pricing": {"prompt": "0.0000008", "completion": "0.000004"}},
        ]
    },
    "test",
)


def test_every_catalog_model_is_allowed_by_default():
    assert allowed_model("anthropic/claude-3.5-haiku", CATALOG, Settings()).model_id == "anthropic/claude-3.5-haiku"


def test_allowlist_takes_ids_and_globs():
    settings = Settings(allowed_models=("openai/*",))
    assert is_allowed("openai/gpt-4o-mini", settings)
    with pytest.raises(ApiError) as refused:
        allowed_model("anthropic/claude-3.5-haiku", CATALOG, settings)
    assert (refused.value.status, refused.value.code) == (400, "model_not_allowed")


def test_unknown_model_is_400():
    with pytest.raises(ApiError) as refused:
        allowed_model("nobody/model", CATALOG, Settings())
    assert (refused.value.status, refused.value.code) == (400, "model_not_found")


def test_max_tokens_cap_and_types():
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
    assert chat_request({**body, "max_tokens": 100}, Settings(max_tokens_cap=100)).max_tokens == 100
    for bad in (101, True, "10", 0, -1):
        with pytest.raises(ApiError) as refused:
            chat_request({**body, "max_tokens": bad}, Settings(max_tokens_cap=100))
        assert refused.value.status == 400
    with pytest.raises(ApiError) as refused:
        chat_request({**body, "messages": body["messages"] * 3}, Settings(max_messages=2))
    assert "Too many messages" in refused.value.message


@pytest.mark.parametrize("raw, code", [
    (b'{"model": "m", "temperature": NaN}', "invalid_json"),
    (b'{"model": "m", "tools": [{"x": Infinity}]}', "invalid_json"),
    (b'{"model": "m", "top_p": 1e400}', "invalid_json"),
    (b'{"model": "m", "messages": [{"role": "user", "content": "\\ud800"}]}', "invalid_json"),
    (b'{"stop": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "body_too_deep"),
    (b"", "invalid_json"),
    (b"[1]", "invalid_json"),
])
def test_bodies_that_could_not_be_sent_upstream_are_400(raw, code):
    with pytest.raises(ApiError) as info:
        decode_body(raw, 32)
    assert (info.value.status, info.value.code) == (400, code)


def test_escaped_surrogate_pairs_are_fine():
    body = decode_body(b'{"content": "\\ud83d\\ude00 ok", "t": 0.5}', 32)
    assert body == {"content": "\U0001F600 ok", "t": 0.5}
