"""A fake OpenAI-compatible chat completions API (`POST {base}/chat/completions`, bearer auth).

Answers the wire format of OpenAI's Chat Completions (`choices[0].message.content` + `usage`).
Queue the next answers' content with `answer(...)`; otherwise it answers `default_content`. Errors
use OpenAI's error shape `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any

from tests.fakes.server import FakeServer, Recorded, Reply

API_KEY = "sk-test-fake"
MODEL = "fake-model-1"
PATH = "/v1/chat/completions"


def openai_error(status: int, message: str, kind: str = "invalid_request_error", code: str | None = None) -> Reply:
    """An error answer in OpenAI's shape."""
    return Reply(status, {"error": {"message": message, "type": kind, "param": None, "code": code}})


def completion(
    content: str | None, *, model: str = MODEL, prompt_tokens: int = 120, completion_tokens: int = 30
) -> dict[str, Any]:
    """A chat.completion object with one choice."""
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class FakeLLM(FakeServer):
    """`base_url` is `{url}/v1` (set LLM_BASE_URL to it)."""

    def __init__(self, *, api_key: str = API_KEY) -> None:
        super().__init__()
        self.api_key = api_key
        self.default_content = json.dumps({"ok": True})
        self._answers: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self.route("POST", re.escape(PATH), self._complete)

    @property
    def base_url(self) -> str:
        """What LLM_BASE_URL should be."""
        return f"{self.url}/v1"

    def answer(self, content: str | None, *, prompt_tokens: int = 120, completion_tokens: int = 30) -> None:
        """Queue the content of the next completion."""
        self._answers.append(completion(content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens))

    def _complete(self, request: Recorded, _match: re.Match[str]) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return openai_error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        body = request.json or {}
        if not body.get("messages"):
            return openai_error(400, "'messages' is a required property")
        answer = self._answers.pop(0) if self._answers else completion(self.default_content)
        answer = {**answer, "id": f"chatcmpl-fake-{next(self._ids)}", "model": body.get("model", MODEL)}
        return Reply(200, answer)
