"""The LLM client: OpenAI-compatible chat completions that must answer one JSON object of a schema.

`LLM_BASE_URL` (e.g. https://api.openai.com/v1) + `/chat/completions`, bearer `LLM_API_KEY`, model
`LLM_MODEL`. Without `LLM_BASE_URL` the skills use their offline logic (`llm_enabled()` is False).

Failures are the engine's error families: 429 -> `RateLimited` (the provider's Retry-After), 408/5xx,
timeouts and connection errors -> `TransientError`, 401/403 -> `AuthRevoked(provider="llm")`, other
4xx -> `PermanentError` with the API's message, an answer that is not JSON of the schema ->
`InvalidLLMOutput` (transient: retried, and on the last attempt the skill falls back to offline).

Calls are paced for the whole deployment (`LLM_REQUESTS_PER_MIN`, one `rate_slots` key `llm`
shared by every worker, as Google's per-user quotas are): a call waits for its slot up to 2 s, or
the step is retried later (`RateLimited`, which does not use up the step's attempts).

`parse_retry_after` and `error_for_status` are shared with the other HTTP clients (Instantly,
Google): one mapping from an HTTP answer to an error family.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from worker import ratelimit
from worker.clients.http import (  # noqa: F401 - re-exported for callers and tests
    api_error_message,
    error_for_status,
    parse_retry_after,
)
from worker.config import get_settings
from worker.errors import PermanentError, TransientError

M = TypeVar("M", bound=BaseModel)

DEFAULT_RETRY_AFTER_S = 1.0  # seconds to wait on a 429 that names no delay
MAX_ERROR_MESSAGE_CHARS = 500  # an API error message longer than this is cut in our errors
MAX_RAW_OUTPUT_CHARS = 2000  # how much of an invalid model answer an InvalidLLMOutput keeps
PACE_KEY = "llm"  # the rate_slots key of the endpoint's calls (one account for the deployment)
PACE_BURST_S = 5.0  # an idle endpoint may take 5 seconds of its per-minute budget at once

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


class InvalidLLMOutput(TransientError):
    """The model answered something that is not one JSON object of the requested schema.

    Transient (error class "transient", which the retry policy keys on) so the engine retries -
    models are not deterministic; on the last attempt the skill uses its offline result. Carries the
    raw answer (cut) and what the call cost.
    """

    def __init__(
        self, message: str, *, raw: str = "", tokens_in: int = 0, tokens_out: int = 0, cost_usd: float = 0.0
    ) -> None:
        super().__init__(message)
        self.raw = raw[:MAX_RAW_OUTPUT_CHARS]
        self.tokens_in = tokens_in
        self.tokens_out = tokens_out
        self.cost_usd = cost_usd


@dataclass(frozen=True)
class LLMResult(Generic[M]):
    """A validated answer and what it cost."""

    value: M
    tokens_in: int
    tokens_out: int
    cost_usd: float
    model: str


# --------------------------------------------------------------------------- LLM


def llm_enabled() -> bool:
    """True when an LLM endpoint is configured (LLM_BASE_URL)."""
    return bool(get_settings().llm_base_url.strip())


def extract_json(content: str) -> Any:
    """The JSON value in a model answer: bare, inside ```json fences, or the outermost {...}."""
    text = content.strip()
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1).strip()
    try:
        return json.loads(text)
    except ValueError:
        start, end = text.find("{"), text.rfind("}")
        if start == -1 or end <= start:
            raise
        return json.loads(text[start : end + 1])


def complete_json(
    schema: type[M],
    system: str,
    user: str,
    *,
    timeout_s: float | None = None,
    max_tokens: int | None = None,
    temperature: float = 0.0,
) -> LLMResult[M]:
    """Ask the model for one JSON object of `schema` and validate it."""
    settings = get_settings()
    if not llm_enabled():
        raise PermanentError("LLM_BASE_URL is not set: the LLM is disabled (use the offline logic)")
    url = settings.llm_base_url.rstrip("/") + "/chat/completions"
    instructions = (
        f"{system}\n\nAnswer with exactly one JSON object, no prose, that validates against this JSON Schema:\n"
        f"{json.dumps(schema.model_json_schema(), separators=(',', ':'))}"
    )
    payload = {
        "model": settings.llm_model,
        "messages": [{"role": "system", "content": instructions}, {"role": "user", "content": user}],
        "response_format": {"type": "json_object"},
        "max_tokens": max_tokens or settings.llm_max_tokens,
        "temperature": temperature,
    }
    headers = {"Accept": "application/json"}
    per_s = settings.llm_requests_per_min / 60.0
    ratelimit.pace(PACE_KEY, per_s, per_s * PACE_BURST_S, f"llm ({settings.llm_requests_per_min:g} requests/min)")
    if settings.llm_api_key:
        headers["Authorization"] = f"Bearer {settings.llm_api_key}"
    try:
        response = httpx.post(url, json=payload, headers=headers, timeout=timeout_s or settings.llm_timeout_s)
    except httpx.TimeoutException as exc:
        raise TransientError(f"llm timed out after {timeout_s or settings.llm_timeout_s} s: {exc!r}") from exc
    except httpx.TransportError as exc:
        raise TransientError(f"llm connection failed: {exc!r}") from exc
    if response.status_code >= 400:
        raise error_for_status(
            response.status_code,
            api_error_message(response.content),
            provider="llm",
            retry_after=response.headers.get("retry-after"),
        )
    try:
        body = response.json()
        content = body["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise TransientError(f"llm answered HTTP {response.status_code} without a chat completion") from exc
    usage = body.get("usage") or {}
    tokens_in, tokens_out = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
    cost = round((tokens_in + tokens_out) / 1000 * settings.llm_price_per_1k_tokens, 6)
    spent = {"tokens_in": tokens_in, "tokens_out": tokens_out, "cost_usd": cost}
    if not isinstance(content, str) or not content.strip():
        raise InvalidLLMOutput("llm answered no content", raw=str(content or ""), **spent)
    try:
        data = extract_json(content)
    except ValueError as exc:
        raise InvalidLLMOutput(f"llm answer is not JSON: {exc}", raw=content, **spent) from exc
    try:
        value = schema.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in exc.errors()[:5])
        raise InvalidLLMOutput(
            f"llm answer does not match {schema.__name__}: {problems}", raw=content, **spent
        ) from exc
    return LLMResult(
        value=value,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=cost,
        model=str(body.get("model") or settings.llm_model),
    )
