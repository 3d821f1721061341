"""Schemathesis against the app's own OpenAPI document (`GET /api/openapi.json`), every operation,
in process (WSGI) on PostgreSQL + Redis.

- With valid credentials (an org API key with the admin role; the recorder's signature for
  /webhooks/recording) every answer is no 5xx, a status, content type and body the document
  declares (positive and negative cases). The smoke test answers 403 to an org key and Pub/Sub's
  push 401 (no OIDC audience configured): both refusals are checked like any answer.
- Without credentials, or with wrong ones, every operation answers 401 or 403, never a 5xx.
- Stateful: the document's links (fireEvent -> getJob / cancelJob, cancelJob -> getJob) chained by
  schemathesis' state machine, each answer checked the same way.

The cases are generated from `webhooks.openapi.document()`, the function the endpoint serves (the
`api` fixture checks the served document is exactly that one): schemathesis' pytest integration
(a schema from a fixture, `schema.parametrize()`) does not work on pytest 9.2, so each operation's
cases are a hypothesis strategy, drawn in a test parametrized by operation. Two
changes for generation only, neither changes what is valid: the event envelope's nine `if/then`
conditions on `type` are given as the equivalent `oneOf` (schemathesis gives up on seven or more
`if/then`), and most envelopes and recordings are aimed at the seeded demo org and its reps, so
cases get past the org check into the sequences' payload validation.

Budget (tests/fuzz/budget.py): per operation 24 cases with a valid key and 6 without, and 8
stateful scenarios of up to 5 calls: 250 in CI, 5,000 under --soak.
"""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core import NotSet
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.fuzz.budget import fuzz_settings
from tests.fuzz.conftest import RECORDING_SECRET
from webhooks import openapi
from worker.ops.seed import REPS, demo_id
from worker.recorder.callback import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

pytestmark = [pytest.mark.postgres]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
RECORDING = "/webhooks/recording"
DEMO_ORG = str(demo_id("org"))
DEMO_USERS = [str(demo_id("user", key)) for key, *_ in REPS]
DEMO_EMAILS = [email for _key, _name, email, *_ in REPS]
# operationId -> Counter of statuses answered to valid credentials (test_the_fuzzer_reached_... reads it).
ANSWERED: dict[str, Counter[int]] = {}


def generation_document(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with the event envelope's `allOf` of `if type == T then payload: <T's model>`
    given as `oneOf` of `{type: const T, payload: <T's model>}`: the same set of valid envelopes
    (`type` is required and one of exactly these nine), in a form schemathesis generates."""
    doc = copy.deepcopy(document)
    event = doc["components"]["schemas"]["Event"]
    conditions = event.pop("allOf")
    event["oneOf"] = [
        {**c["then"], "properties": {"type": c["if"]["properties"]["type"], **c["then"]["properties"]}}
        for c in conditions
    ]
    return doc


schema = schemathesis.openapi.from_dict(generation_document(openapi.document()))
schema.config.generation.update(with_security_parameters=False)  # credentials are the tests' own choice
# A body over 1 MiB is refused with 413 before it is read: a rejection like any other.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*_rejection.expected_statuses, "413"]


def _in_demo_org(body: Any, user: str, email: str) -> Any:
    if not isinstance(body, dict):
        return body
    body = {**body, "org_id": DEMO_ORG}
    if body.get("user_id") is not None:
        body["user_id"] = user
    if body.get("user_email") is not None:
        body["user_email"] = email
    return body


@schema.hook
def before_generate_body(context: schemathesis.HookContext, strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
    """Three envelopes or recordings in four for the demo org (and a rep of it), the rest as drawn."""
    operation = context.operation
    if operation is None or operation.definition.raw.get("operationId") not in ("fireEvent", "recordingReady"):
        return strategy
    aimed = st.builds(_in_demo_org, strategy, st.sampled_from(DEMO_USERS), st.sampled_from(DEMO_EMAILS))
    return st.one_of(aimed, aimed, aimed, strategy)


def without_long_waits(case: schemathesis.Case) -> schemathesis.Case:
    """The case with a valid `?wait=` cut to 50 ms: no worker runs here, so an accepted event's
    request would hold for the whole wait (up to 30 s) before answering its `queued` status."""
    wait = case.query.get("wait") if isinstance(case.query, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and 0 < wait <= 30:
        case.query["wait"] = min(wait, 0.05)
    return case


def _for_demo_org(query: Any) -> Any:
    return {**query, "org_id": DEMO_ORG} if isinstance(query, dict) else query


@schema.hook
def before_generate_query(context: schemathesis.HookContext, strategy: SearchStrategy[Any]) -> SearchStrategy[Any]:
    """Half the metrics queries for the demo org (the key's own: a 200), the rest as drawn."""
    operation = context.operation
    if operation is None or operation.definition.raw.get("operationId") != "getOrgMetrics":
        return strategy
    return st.one_of(strategy.map(_for_demo_org), strategy)


@pytest.fixture(scope="module")
def api(edge_app: Flask) -> Flask:
    """The real app, once its served document is checked to be the one the cases come from."""
    served = schemathesis.openapi.from_wsgi("/api/openapi.json", edge_app)
    assert served.raw_schema == openapi.document()
    return edge_app


def _body_bytes(case: schemathesis.Case) -> bytes:
    """The bytes schemathesis would send for the case's JSON body (raw bytes as they are)."""
    if isinstance(case.body, NotSet):
        return b""
    if isinstance(case.body, bytes):
        return case.body
    return json.dumps(case.body, default=str).encode()


def signed_recording(case: schemathesis.Case, app: Flask) -> schemathesis.Response:
    """Send a recording case with the recorder's signature of exactly the bytes sent."""
    raw = _body_bytes(case)
    ts = str(int(time.time()))
    return case.call(
        app=app, data=raw, headers={TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(RECORDING_SECRET, ts, raw)}
    )


OPERATIONS = {op.definition.raw["operationId"]: op for op in (r.ok() for r in schema.get_all_operations())}
# Each operation's cases, valid and invalid. Drawn in tests parametrized by operation: schemathesis' own
# `schema.parametrize()` gives its items one node id per test function on pytest 9.2, and xdist then
# runs a single operation of each.
CASES = {
    name: st.one_of(*(op.as_strategy(mode, hooks=schema.hooks) for mode in GenerationMode))
    for name, op in OPERATIONS.items()
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@fuzz_settings(ci=24)
@given(data=st.data())
def test_every_operation_answers_as_documented_to_valid_credentials(api, org_admin_key, operation, data):
    """No 5xx; status, content type, headers and body as declared; invalid input refused."""
    case = data.draw(CASES[operation], label="case")
    if case.path == RECORDING:
        response = signed_recording(case, api)
    else:
        response = without_long_waits(case).call(app=api, headers={"Authorization": f"Bearer {org_admin_key}"})
    ANSWERED.setdefault(operation, Counter())[response.status_code] += 1
    case.validate_response(response, checks=CHECKS)


# Printable ASCII, no space at either end (the transport refuses to send such a header value).
_header_text = st.from_regex(r"[!-~]([ -~]{0,58}[!-~])?", fullmatch=True)
wrong_credentials = st.one_of(
    st.just({}),
    st.just({"Authorization": "Bearer wrong"}),
    _header_text.map(lambda t: {"Authorization": t}),
    _header_text.map(lambda t: {"Authorization": "Bearer " + t}),
    st.builds(lambda ts, sig: {TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sig}, _header_text, _header_text),
    st.just({TIMESTAMP_HEADER: "0", SIGNATURE_HEADER: "sha256=" + "0" * 64}),
)


@pytest.mark.parametrize("operation", list(OPERATIONS))
@fuzz_settings(ci=6)
@given(data=st.data(), credentials=wrong_credentials)
def test_without_valid_credentials_every_operation_is_refused(api, operation, data, credentials):
    """No key, a wrong key or a wrong signature: 401 or 403 (as declared), whatever the rest of the
    request; the recorder's signature covers the body, so a body over 1 MiB is refused first (413)."""
    case = data.draw(CASES[operation], label="case")
    response = case.call(app=api, headers=credentials)
    refusals = (401, 403, 413) if case.path == RECORDING else (401, 403)
    assert response.status_code in refusals, (response.status_code, response.text[:300])
    case.validate_response(response, checks=CHECKS)


def test_fired_jobs_are_read_and_cancelled_through_the_documents_links(api, org_admin_key):
    """Sequences of fire, read and cancel calls along the document's links, every answer checked."""
    jobs = schema.include(operation_id=["fireEvent", "getJob", "cancelJob"])
    statuses: Counter[tuple[str, int]] = Counter()

    class Machine(jobs.as_state_machine()):  # type: ignore[misc]
        def before_call(self, case: schemathesis.Case) -> None:
            if case.path == "/api/events":  # the generation hook is not applied to stateful steps
                case.body = _in_demo_org(case.body, DEMO_USERS[0], DEMO_EMAILS[0])
                without_long_waits(case)

        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"app": api, "headers": {"Authorization": f"Bearer {org_admin_key}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs) -> None:
            statuses[(case.operation.definition.raw["operationId"], response.status_code)] += 1
            case.validate_response(response, checks=CHECKS)

    base = fuzz_settings(ci=8)
    Machine.run(settings=settings(base, stateful_step_count=5))
    assert statuses[("fireEvent", 202)] > 0, statuses
    assert statuses[("getJob", 200)] > 0, statuses  # a link followed to a real job
    assert statuses[("cancelJob", 200)] > 0, statuses


def test_the_fuzzer_reached_the_answers_that_matter():
    """Not only refusals: with valid credentials the fuzzer fired jobs, read metrics and stored recordings."""
    if not ANSWERED:
        pytest.skip("the fuzzer above did not run in this process")
    assert set(ANSWERED) == set(OPERATIONS), ANSWERED
    assert ANSWERED["fireEvent"][202] > 0, ANSWERED
    assert ANSWERED["getOrgMetrics"][200] > 0, ANSWERED
    assert ANSWERED["recordingReady"][200] + ANSWERED["recordingReady"][202] > 0, ANSWERED


@pytest.mark.parametrize("range_", ["", " 7d", "7d ", "7D"])
def test_metrics_refuse_a_range_the_document_does_not_list(api, org_admin_key, range_):
    """Found by the fuzzer: `range=` (empty) and padded names answered 200 with the 7-day metrics,
    though the document's enum is 7d, 30d, 90d exactly."""
    response = api.test_client().get(
        "/api/admin/metrics", query_string={"range": range_}, headers={"Authorization": f"Bearer {org_admin_key}"}
    )
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["accepted"] == ["7d", "30d", "90d"]


def test_the_document_requires_the_rep_and_payload_the_server_requires(api, org_admin_key):
    """Found by the fuzzer: envelopes without `user_id` (rep events) or without `payload` (a model
    that refuses `{}`) matched the document and got a 422; the document now requires them."""
    conditions = {
        c["if"]["properties"]["type"]["const"]: c["then"]
        for c in openapi.document()["components"]["schemas"]["Event"]["allOf"]
    }
    assert conditions["meeting_ended"]["required"] == ["user_id", "payload"]
    assert "required" not in conditions["campaign_daily_check"]
    client, headers = api.test_client(), {"Authorization": f"Bearer {org_admin_key}"}
    payload = {"meeting_id": str(demo_id("meeting", "fuzz"))}
    for envelope in (
        {"type": "meeting_ended", "org_id": DEMO_ORG, "payload": payload},
        {"type": "meeting_ended", "org_id": DEMO_ORG, "user_id": DEMO_USERS[0]},
    ):
        response = client.post("/api/events", json=envelope, headers=headers)
        assert response.status_code == 422, response.get_data(as_text=True)[:300]
