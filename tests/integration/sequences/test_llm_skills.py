"""Skills marked *LLM* ask the configured model (OpenAI-compatible fake) and fall back to their
offline logic after invalid output; tokens and cost land on the step run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.fakes.llm import API_KEY, FakeLLM
from tests.integration.sequences.conftest import World, children, wait_job
from tests.support.engine import step_rows
from worker.engine.events import fire_event
from worker.ops.seed import demo_id

pytestmark = pytest.mark.slow
GLOBEX_QUESTION = {"email_id": str(demo_id("email", "email-globex-question"))}  # a question: reply_required by rules


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as fake:
        yield fake


@pytest.fixture(scope="module")
def extra_env(llm: FakeLLM) -> dict[str, str]:
    return {
        "LLM_BASE_URL": llm.base_url,
        "LLM_API_KEY": API_KEY,
        "LLM_MODEL": "fake-model-1",
        "LLM_PRICE_PER_1K_TOKENS": "0.5",
    }


def test_the_model_classifies_and_its_tokens_and_cost_are_stored(w: World, llm: FakeLLM):
    llm.answer(
        json.dumps(
            {
                "intent": "booking_request",
                "confidence": 0.93,
                "signals": ["llm: asks for a call"],
                "scheduling_text": "Tuesday afternoon",
            }
        ),
        prompt_tokens=120,
        completion_tokens=30,
    )
    job = fire_event(w.event("email_received", GLOBEX_QUESTION)).job_id
    assert wait_job(job) == "completed"
    classify = step_rows(job)["classify-email-intent"]
    assert classify.output["intent"]["intent"] == "booking_request"  # the model's answer, not the rules'
    assert (classify.tokens, classify.cost_usd) == (150, pytest.approx(0.075))
    assert step_rows(job)["book-meeting"].status == "succeeded"
    follow_up = children(job)[0]
    assert follow_up.event_type == "calendar_find_times" and follow_up.payload["scheduling_text"] == "Tuesday afternoon"
    request = llm.requests_to("POST", r"/v1/chat/completions")[-1].json
    assert request["model"] == "fake-model-1" and request["response_format"] == {"type": "json_object"}


def test_malformed_output_is_retried_then_the_offline_result_is_used(w: World, llm: FakeLLM):
    llm.answer("this is not JSON at all")
    llm.answer('{"intent": "no such intent"}')
    job = fire_event(w.event("email_received", GLOBEX_QUESTION)).job_id
    assert wait_job(job, "awaiting_approval", "failed", "completed") == "awaiting_approval"
    classify = step_rows(job)["classify-email-intent"]
    assert classify.attempt == 2  # first attempt: transient error (invalid output), retried
    assert classify.output["intent"]["intent"] == "reply_required"  # the offline rules decided
    assert "InvalidLLMOutput" in (classify.error or "")
