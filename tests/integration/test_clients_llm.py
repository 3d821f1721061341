"""worker.clients.llm against a fake OpenAI-compatible server over real HTTP (no database)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pydantic import BaseModel

from tests.fakes.llm import API_KEY, PATH, FakeLLM, openai_error
from tests.fakes.server import Reply
from worker.clients import llm
from worker.config import reset_settings
from worker.engine.retry import decide_retry
from worker.errors import AuthRevoked, PermanentError, RateLimited, TransientError


class Intent(BaseModel):
    intent: str
    confidence: float


GOOD = json.dumps({"intent": "reply_required", "confidence": 0.9})


@pytest.fixture(autouse=True)
def _unpaced() -> Iterator[None]:
    """No database here: the shared pacing (a database row) is off; test_rate_limits.py tests it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLM_REQUESTS_PER_MIN", "0")
        reset_settings()
        yield
    reset_settings()


@pytest.fixture
def fake_llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLM]:
    """A running fake LLM with LLM_* pointing at it (price 0.5 USD per 1k tokens)."""
    with FakeLLM() as fake:
        monkeypatch.setenv("LLM_BASE_URL", fake.base_url)
        monkeypatch.setenv("LLM_API_KEY", API_KEY)
        monkeypatch.setenv("LLM_MODEL", "fake-model-1")
        monkeypatch.setenv("LLM_PRICE_PER_1K_TOKENS", "0.5")
        reset_settings()
        yield fake
    reset_settings()


def test_disabled_without_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLM_BASE_URL", raising=False)
    reset_settings()
    try:
        assert llm.llm_enabled() is False
        with pytest.raises(PermanentError, match="LLM_BASE_URL"):
            llm.complete_json(Intent, "s", "u")
    finally:
        reset_settings()


def test_happy_path_sends_the_openai_request_and_validates(fake_llm: FakeLLM) -> None:
    assert llm.llm_enabled() is True
    fake_llm.answer(GOOD, prompt_tokens=800, completion_tokens=200)

    result = llm.complete_json(Intent, "Classify the email.", "Can we talk Tuesday?", max_tokens=300)

    assert result.value == Intent(intent="reply_required", confidence=0.9)
    assert (result.tokens_in, result.tokens_out, result.model) == (800, 200, "fake-model-1")
    assert result.cost_usd == pytest.approx(0.5)  # 1,000 tokens x 0.5 USD / 1k
    (sent,) = fake_llm.requests_to("POST", PATH)
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    body = sent.json
    assert body["model"] == "fake-model-1"
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_tokens"] == 300
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"].startswith("Classify the email.")
    assert '"confidence"' in body["messages"][0]["content"]  # the schema is in the prompt
    assert body["messages"][1]["content"] == "Can we talk Tuesday?"


@pytest.mark.parametrize(
    "content",
    [
        f"```json\n{GOOD}\n```",
        f"Here you go:\n```\n{GOOD}\n```\nAnything else?",
        f"Sure! {GOOD} Hope that helps.",
    ],
)
def test_json_in_fences_or_prose_is_extracted(fake_llm: FakeLLM, content: str) -> None:
    fake_llm.answer(content)
    assert llm.complete_json(Intent, "s", "u").value.intent == "reply_required"


def test_malformed_json_is_invalid_output_and_transient(fake_llm: FakeLLM) -> None:
    fake_llm.answer('{"intent": "reply_required", "confidence": ', prompt_tokens=10, completion_tokens=5)
    with pytest.raises(llm.InvalidLLMOutput, match="not JSON") as info:
        llm.complete_json(Intent, "s", "u")
    assert isinstance(info.value, TransientError)
    assert decide_retry(info.value, attempt=1, max_attempts=3).retry  # the engine retries it
    assert not decide_retry(info.value, attempt=3, max_attempts=3).retry  # last attempt: skill goes offline
    assert info.value.raw.startswith('{"intent"')
    assert (info.value.tokens_in, info.value.tokens_out) == (10, 5)
    assert info.value.cost_usd == pytest.approx(0.0075)


def test_schema_mismatch_is_invalid_output(fake_llm: FakeLLM) -> None:
    fake_llm.answer(json.dumps({"intent": "reply_required", "confidence": "very"}))
    with pytest.raises(llm.InvalidLLMOutput, match="does not match Intent: confidence"):
        llm.complete_json(Intent, "s", "u")


def test_empty_content_is_invalid_output(fake_llm: FakeLLM) -> None:
    fake_llm.answer(None)
    with pytest.raises(llm.InvalidLLMOutput, match="no content"):
        llm.complete_json(Intent, "s", "u")


def test_429_with_seconds_is_rate_limited(fake_llm: FakeLLM) -> None:
    fake_llm.script("POST", PATH, Reply(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "7"}))
    with pytest.raises(RateLimited, match="Rate limit reached") as info:
        llm.complete_json(Intent, "s", "u")
    assert info.value.retry_after_s == 7.0


def test_429_with_http_date_is_rate_limited(fake_llm: FakeLLM) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    fake_llm.script("POST", PATH, Reply(429, {"error": {"message": "slow down"}}, {"Retry-After": when}))
    with pytest.raises(RateLimited) as info:
        llm.complete_json(Intent, "s", "u")
    assert 25 <= info.value.retry_after_s <= 30


def test_429_without_retry_after_defaults_to_one_second(fake_llm: FakeLLM) -> None:
    fake_llm.script("POST", PATH, openai_error(429, "Rate limit reached", "requests"))
    with pytest.raises(RateLimited) as info:
        llm.complete_json(Intent, "s", "u")
    assert info.value.retry_after_s == 1.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_transient(fake_llm: FakeLLM, status: int) -> None:
    fake_llm.script("POST", PATH, openai_error(status, "The server had an error", "server_error"))
    with pytest.raises(TransientError) as info:
        llm.complete_json(Intent, "s", "u")
    assert not isinstance(info.value, llm.InvalidLLMOutput | RateLimited)
    assert f"HTTP {status}" in str(info.value)


def test_wrong_key_is_auth_revoked(fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_API_KEY", "sk-wrong")
    reset_settings()
    with pytest.raises(AuthRevoked, match="Incorrect API key") as info:
        llm.complete_json(Intent, "s", "u")
    assert info.value.provider == "llm"


def test_other_4xx_is_permanent_with_the_api_message(fake_llm: FakeLLM) -> None:
    fake_llm.script("POST", PATH, openai_error(400, "This model's maximum context length is 8192 tokens"))
    with pytest.raises(PermanentError, match="maximum context length is 8192"):
        llm.complete_json(Intent, "s", "u")


def test_a_stalled_server_times_out_as_transient(fake_llm: FakeLLM) -> None:
    fake_llm.script("POST", PATH, Reply(200, {}, delay_s=30))
    with pytest.raises(TransientError, match="timed out"):
        llm.complete_json(Intent, "s", "u", timeout_s=0.3)


def test_connection_refused_is_transient(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeLLM() as fake:
        dead = fake.base_url
    monkeypatch.setenv("LLM_BASE_URL", dead)
    reset_settings()
    try:
        with pytest.raises(TransientError, match="connection failed"):
            llm.complete_json(Intent, "s", "u", timeout_s=2)
    finally:
        reset_settings()


def test_a_200_that_is_not_a_completion_is_transient(fake_llm: FakeLLM) -> None:
    fake_llm.script("POST", PATH, Reply(200, "<html>gateway</html>"))
    with pytest.raises(TransientError, match="without a chat completion"):
        llm.complete_json(Intent, "s", "u")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, 1.0),
        ("", 1.0),
        ("0", 0.0),
        ("2.5", 2.5),
        ("-3", 0.0),
        ("soon", 1.0),
        ("Wed, 25 Nov 2026 10:00:30 GMT", 30.0),
        ("Wed, 25 Nov 2026 09:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float) -> None:
    now = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    assert llm.parse_retry_after(header, now=now) == expected
