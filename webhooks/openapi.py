"""The OpenAPI 3.1 document served at `/api/openapi.json`.

Request schemas are generated from the pydantic models that validate the requests (the event
envelope, the nine payloads, the recorder's body), so the document cannot drift from what the
server accepts; response schemas, and Pub/Sub's push envelope (Google's format, not a model of
ours), are written here, next to the views that produce them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from worker.engine.payloads import INTERNAL_FIELDS, ORG_LEVEL_TYPES, PAYLOAD_MODELS, EventType, PublicEvent
from worker.engine.states import JobStatus
from worker.recorder.callback import SIGNATURE_HEADER, SIGNATURE_WINDOW_S, TIMESTAMP_HEADER, RecordingReady

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _model_schemas() -> dict[str, Any]:
    """The caller's event envelope (`PublicEvent`, published as `Event`), the nine payloads and the
    recording body as JSON Schema 2020-12 (OpenAPI 3.1's)."""
    models = [PublicEvent, *PAYLOAD_MODELS.values(), RecordingReady]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = top["$defs"]
    event = schemas["Event"] = schemas.pop(PublicEvent.__name__)  # nothing refers to it by the class name
    event["description"] = (
        "The event envelope a caller sends (docs/events.md). `payload` must match the schema of the event's "
        "`type`. No other field is accepted: the server sets the source (`api:<key name>`, `api` for the admin "
        f"token) and the follow-up fields; sending {', '.join(INTERNAL_FIELDS)} is a 422 naming the field."
    )
    props = event["properties"]
    props["payload"]["description"] = "The payload of `type`: see the `allOf` conditions."
    props["idempotency_key"]["description"] = (
        "One job per key per org: the same key again answers that job (`duplicate`). Default: the type's key "
        "(docs/events.md). Stored as `caller:<key>`, so it never meets a key the server's own producers "
        "(crons, webhooks, follow-ups) use."
    )
    props["delay_minutes"]["description"] = (
        "Start the job's steps this many minutes from now (at most 30 days). The job exists at once "
        "(`queued`, `scheduled_for` set) and can be cancelled with POST /api/jobs/{job_id}/cancel."
    )
    props["replace"]["description"] = (
        "proposal_generation, stale_deal_revival and calendar_find_times with a `deal_id` allow one live job per "
        "rep and deal. A second one is a `skipped` job (reason `already_live`, `live_job_id`) unless `replace` "
        "is true: then the live job is cancelled (at its step boundary) and this one starts. A 422 on other events."
    )
    event["allOf"] = [
        {
            "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
            "then": _event_condition(event_type, model),
        }
        for event_type, model in PAYLOAD_MODELS.items()
    ]
    return schemas


def _event_condition(event_type: EventType, model: type[BaseModel]) -> dict[str, Any]:
    """What an envelope of `event_type` must also hold: a payload of its model, there at all when
    the model refuses `{}` (an omitted payload is `{}`), and a rep (`user_id`) unless the type
    concerns the whole org."""
    properties: dict[str, Any] = {"payload": _ref(model.__name__)}
    required: list[str] = []
    if event_type not in ORG_LEVEL_TYPES:
        properties["user_id"] = {"type": "string", "format": "uuid", "description": "The rep (required)."}
        required.append("user_id")
    try:
        model.model_validate({})
    except ValidationError:
        required.append("payload")
    return {"properties": properties, "required": required} if required else {"properties": properties}


def _response_schemas() -> dict[str, Any]:
    iso = {"type": "string", "format": "date-time"}
    uuid_ = {"type": "string", "format": "uuid"}
    return {
        "FireResult": {
            "type": "object",
            "required": ["job_id", "status", "duplicate"],
            "properties": {
                "job_id": uuid_,
                "status": {"type": "string", "enum": [s.value for s in JobStatus]},
                "duplicate": {"type": "boolean", "description": "The key already had a job: this is that job."},
                "reason": {
                    "type": "string",
                    "description": "Why the job was skipped (gated events only; `already_live` when another job "
                    "of the same rep and deal is live).",
                },
                "live_job_id": {
                    **uuid_,
                    "description": "With reason `already_live`: the live job (fire with `replace: true` to "
                    "cancel it and start a new one).",
                },
                "scheduled_for": {
                    **iso,
                    "description": "With `delay_minutes`: when the job's steps start (it is `queued` until then).",
                },
            },
        },
        "CancelResult": {
            "type": "object",
            "required": ["job_id", "status", "immediate"],
            "properties": {
                "job_id": uuid_,
                "status": {"type": "string", "enum": [s.value for s in JobStatus]},
                "immediate": {
                    "type": "boolean",
                    "description": "True when the job ended now (no step was running); false when it ends at "
                    "its next step boundary, or had already ended (`status` says how).",
                },
            },
        },
        "Error": {
            "type": "object",
            "required": ["error", "message", "request_id"],
            "properties": {
                "error": {
                    "type": "string",
                    "pattern": "^[a-z][a-z0-9_]*$",
                    "description": "A snake_case code a client may switch on: `invalid_event` (422), "
                    "`unauthorized` (401), `not_found` (404), `payload_too_large` (413), `rate_limited` (429), "
                    "`unavailable` (503)...",
                },
                "message": {"type": "string", "description": "One line for a person: what is wrong, what to do."},
                "request_id": {"type": "string"},
                "errors": {
                    "type": "array",
                    "description": "Every field error (422 only).",
                    "items": {
                        "type": "object",
                        "required": ["field", "message"],
                        "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
                    },
                },
                "role": {
                    "type": "string",
                    "enum": ["events", "admin"],
                    "description": "The API key's role (a 403 from the admin API only).",
                },
                "required_role": {
                    "type": "string",
                    "enum": ["admin"],
                    "description": "The role the endpoint needs (a 403 from the admin API only).",
                },
                "retry_after_s": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "Seconds to wait, as the Retry-After header says (a 429 only).",
                },
            },
        },
        "Step": {
            "type": "object",
            "properties": {
                "id": uuid_,
                "step": {"type": "string"},
                "iteration": {"type": "integer"},
                "superseded": {"type": "boolean"},
                "status": {"type": "string"},
                "reason": _nullable("string"),
                "attempt": {"type": "integer"},
                "queue": _nullable("string"),
                "duration_ms": _nullable("integer"),
                "error": _nullable("string"),
                "error_class": _nullable("string"),
                "waiting": {
                    "type": "boolean",
                    "description": "Queued while its user (re)connects Google: retried hourly, at once on a connect.",
                },
                "not_before": _nullable("string", format="date-time"),
                "queued_at": _nullable("string", format="date-time"),
                "started_at": _nullable("string", format="date-time"),
                "finished_at": _nullable("string", format="date-time"),
                "output": {"description": "The skill's JSON output (null once purged)."},
                "cost_usd": _nullable("number"),
                "purged_at": {
                    **_nullable("string", format="date-time"),
                    "description": "When retention cleared its output.",
                },
            },
        },
        "Approval": {
            "type": "object",
            "properties": {
                "id": uuid_,
                "step": {"type": "string"},
                "kind": {"type": "string"},
                "status": {"type": "string"},
                "decision": _nullable("string"),
                "decision_data": {"description": "What the approver chose or edited."},
                "approvers": {"type": "array", "items": {"type": "string"}},
                "decided_by": _nullable("string"),
                "decided_at": _nullable("string", format="date-time"),
                "expires_at": _nullable("string", format="date-time"),
                "created_at": iso,
                "purged_at": {
                    **_nullable("string", format="date-time"),
                    "description": "When retention cleared its preview and decision_data.",
                },
            },
        },
        "Message": {
            "type": "object",
            "properties": {
                "id": uuid_,
                "kind": {"type": "string"},
                "status": {"type": "string"},
                "error_code": _nullable("string"),
                "error": _nullable("string"),
                "channel": _nullable("string"),
                "ts": _nullable("string"),
                "not_before": _nullable("string", format="date-time"),
                "attempts": {"type": "integer"},
                "created_at": iso,
                "sent_at": _nullable("string", format="date-time"),
            },
        },
        "Effect": {
            "type": "object",
            "description": "An external side effect (an email, a calendar invite); never its stored result.",
            "properties": {
                "step": {"type": "string"},
                "name": {"type": "string"},
                "status": {"type": "string", "enum": ["started", "done", "failed"]},
                "attempt": {"type": "integer"},
                "dry_run": {"type": "boolean", "description": "Recorded, not made."},
                "subject": _nullable("string"),
                "recipients": {"type": "array", "items": {"type": "string"}},
                "provider_id": {"description": "The provider's id of what was made (real sends only)."},
                "created_at": iso,
                "done_at": _nullable("string", format="date-time"),
            },
        },
        "JobLink": {
            "type": "object",
            "properties": {
                "id": uuid_,
                "event_type": {"type": "string"},
                "status": {"type": "string"},
                "created_at": iso,
            },
        },
        "Job": {
            "type": "object",
            "required": [
                "id",
                "org_id",
                "event_type",
                "status",
                "errors",
                "failed_steps",
                "steps",
                "approvals",
                "messages",
            ],
            "properties": {
                "id": uuid_,
                "org_id": uuid_,
                "user_id": _nullable("string", format="uuid"),
                "event_type": {"type": "string"},
                "source": {"type": "string"},
                "status": {"type": "string", "enum": [s.value for s in JobStatus]},
                "reason": _nullable("string"),
                "idempotency_key": {"type": "string"},
                "parent_job_id": _nullable("string", format="uuid"),
                "depth": {"type": "integer"},
                "error": _nullable("string"),
                "error_step": _nullable("string"),
                "errors": {
                    "type": "integer",
                    "description": "How many of its steps failed: a `completed` job with errors is not a clean run.",
                },
                "failed_steps": {
                    "type": "array",
                    "description": "Every failed step (best-effort ones included) with its error.",
                    "items": {
                        "type": "object",
                        "required": ["step", "error", "error_class"],
                        "properties": {
                            "step": {"type": "string"},
                            "error": _nullable("string"),
                            "error_class": _nullable("string"),
                        },
                    },
                },
                "created_at": iso,
                "started_at": _nullable("string", format="date-time"),
                "finished_at": _nullable("string", format="date-time"),
                "duration_ms": _nullable("integer"),
                "cancel_requested": {"type": "boolean"},
                "live_job_id": {
                    **_nullable("string", format="uuid"),
                    "description": "A job skipped `already_live`: the live job of the same rep and deal.",
                },
                "scheduled_for": {
                    **_nullable("string", format="date-time"),
                    "description": "A job fired with `delay_minutes`: when its steps start.",
                },
                "payload": {"type": "object", "description": "The event's payload ({} once purged)."},
                "purged_at": {
                    **_nullable("string", format="date-time"),
                    "description": "When retention cleared the payload, step outputs and approval drafts "
                    "(the org's `retention_days`); null while the content is kept.",
                },
                "retention_days": {
                    **_nullable("integer"),
                    "description": "A purged job: the org's retention in days.",
                },
                "purged": {
                    **_nullable("string"),
                    "description": "A purged job: 'content purged on <date> (retention N days): ...'.",
                },
                "steps": {"type": "array", "items": _ref("Step")},
                "approvals": {"type": "array", "items": _ref("Approval")},
                "messages": {"type": "array", "items": _ref("Message")},
                "trace_id": _nullable("string"),
                "effects": {"type": "array", "items": _ref("Effect")},
                "parent": {
                    "oneOf": [_ref("JobLink"), {"type": "null"}],
                    "description": "The job whose completion fired this one.",
                },
                "follow_ups": {"type": "array", "items": _ref("JobLink"), "description": "Jobs this one fired."},
                "scheduled_follow_ups": {
                    "type": "array",
                    "description": "Follow-ups with a delay, not fired yet.",
                    "items": {
                        "type": "object",
                        "properties": {
                            "event_type": _nullable("string"),
                            "fire_at": iso,
                            "error": _nullable("string"),
                        },
                    },
                },
            },
        },
        "RecordingResult": {
            "type": "object",
            "required": ["meeting_id", "created", "fired"],
            "properties": {
                "meeting_id": uuid_,
                "created": {"type": "boolean", "description": "False when an earlier delivery stored it."},
                "fired": {"type": "boolean"},
                "job_id": uuid_,
                "status": {"type": "string"},
                "duplicate": {"type": "boolean"},
                "reason": {"type": "string", "description": "Why no job: single_attendee or no_rep."},
            },
        },
        **_admin_schemas(),
    }


def _admin_schemas() -> dict[str, Any]:
    """The admin API's answers: an org's metrics (docs/metrics.md) and the smoke report."""
    ms = _nullable("integer", description="Milliseconds; null when there is nothing to measure.")
    counts = {"type": "object", "additionalProperties": {"type": "integer"}}
    row = {"type": "object", "additionalProperties": True}
    return {
        "OrgMetrics": {
            "type": "object",
            "description": "An org's jobs created in the last `range_days` local days (the org's time zone, "
            "today included); `stuck_jobs`, pending approvals and the outbox lag are the present state. "
            "Field definitions: docs/metrics.md.",
            "required": ["org_id", "range_days", "total_sequences", "success_rate", "daily_counts"],
            "properties": {
                "org_id": {"type": "string", "format": "uuid"},
                "org_name": {"type": "string"},
                "timezone": {"type": "string"},
                "range_days": {"type": "integer", "enum": [7, 30, 90]},
                "window_start": {"type": "string", "format": "date-time"},
                "generated_at": {"type": "string", "format": "date-time"},
                "total_sequences": {"type": "integer"},
                "sequences_by_source": counts,
                "sequences_by_type": counts,
                "sequences_by_status": counts,
                "avg_duration_ms": ms,
                "p50_duration_ms": ms,
                "p95_duration_ms": ms,
                "success_rate": _nullable(
                    "number", description="completed / (completed + failed + timeout); null when none finished."
                ),
                "stuck_jobs": {"type": "array", "items": row, "description": "{job_id, type, since, why}"},
                "daily_counts": {"type": "array", "items": row, "description": "{date, total, completed, failed}"},
                "top_skills": {
                    "type": "array",
                    "items": row,
                    "description": "{step, runs, failed, failure_rate, p95_duration_ms}",
                },
                "error_summary": {
                    "type": "array",
                    "items": row,
                    "description": "{error_class, message, count, example_job_id}, the 10 largest",
                },
                "hitl": row,
                "slack": row,
            },
        },
        "SmokeReport": {
            "type": "object",
            "required": ["ok", "results", "summary"],
            "properties": {
                "ok": {"type": "boolean", "description": "False when an event failed."},
                "org_id": {"type": "string", "format": "uuid"},
                "results": {
                    "type": "array",
                    "items": row,
                    "description": "One per event: {event_type, outcome (passed, paused, skipped, failed), job_id, "
                    "status, steps_completed, steps_total, duration_ms, detail}.",
                },
                "summary": {"type": "string", "description": "`N passed, N paused, N skipped, N failed`."},
            },
        },
    }


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


UNAVAILABLE = {
    **_error("The database is unreachable: retry (see Retry-After)."),
    "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
}


_JOB_OPERATIONS = {"GetJob": "getJob", "CancelJob": "cancelJob"}


def _job_links(*names: str) -> dict[str, Any]:
    """OpenAPI links from an answer carrying `job_id` to the operations on that job (clients and
    stateful test tools follow them: fire an event, then read or cancel its job)."""
    return {
        name: {
            "operationId": _JOB_OPERATIONS[name],
            "parameters": {"job_id": "$response.body#/job_id"},
            "description": f"{_JOB_OPERATIONS[name]} on the job this answer names.",
        }
        for name in names
    }


def _paths() -> dict[str, Any]:
    return {
        "/api/events": {
            "post": {
                "operationId": "fireEvent",
                "summary": "Fire one event (runs its sequence).",
                "description": "An org API key (either role) may fire for its own org only; the admin token for "
                "any org. The job's source is the caller: `api:<key name>`, or `api` for the admin token.",
                "parameters": [
                    {
                        "name": "wait",
                        "in": "query",
                        "required": False,
                        "description": "Wait up to this many seconds for a final or paused (awaiting_approval) "
                        "state; the answer carries the latest status.",
                        "schema": {"type": "number", "exclusiveMinimum": 0, "maximum": 30},
                    }
                ],
                "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("Event")}}},
                "responses": {
                    "202": {
                        "description": "Accepted (or the existing job for this idempotency key).",
                        "content": {"application/json": {"schema": _ref("FireResult")}},
                        "links": _job_links("GetJob", "CancelJob"),
                    },
                    "400": _error("Invalid JSON or an invalid `wait`."),
                    "401": _error("Missing, unknown or revoked key."),
                    "403": _error("The key's org is not the event's org."),
                    "413": _error("The body is over 1 MiB."),
                    "415": _error("Content-Type is not application/json."),
                    "422": _error(
                        "`invalid_event`: the envelope or payload does not validate (`errors` lists every field; "
                        "a field only the server sets, such as `source` or `depth`, is named as such)."
                    ),
                    "429": {
                        **_error(
                            "`rate_limited`: the org is over its events limit (PROACTIVE_ORG_EVENTS_PER_S, bursts of "
                            "PROACTIVE_ORG_EVENTS_BURST, shared by every key of the org and the admin token); "
                            "nothing was accepted: send it again after Retry-After."
                        ),
                        "headers": {
                            "Retry-After": {
                                "schema": {"type": "integer", "minimum": 1},
                                "description": "Seconds to wait.",
                            }
                        },
                    },
                    "503": UNAVAILABLE,
                },
            }
        },
        "/api/jobs/{job_id}": {
            "get": {
                "operationId": "getJob",
                "summary": "One job with its steps, approvals and Slack messages; failed steps counted in `errors`.",
                "parameters": [
                    {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                ],
                "responses": {
                    "200": {"description": "The job.", "content": {"application/json": {"schema": _ref("Job")}}},
                    "401": _error("Missing, unknown or revoked key."),
                    "404": _error("No such job in the key's org."),
                    "503": UNAVAILABLE,
                },
            }
        },
        "/api/jobs/{job_id}/cancel": {
            "post": {
                "operationId": "cancelJob",
                "summary": "Cancel a job: at once when no step is running (a delayed job before it starts), else "
                "at its next step boundary.",
                "parameters": [
                    {"name": "job_id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
                ],
                "responses": {
                    "200": {
                        "description": "Cancelled, or cancel requested; an ended job answers its final status.",
                        "content": {"application/json": {"schema": _ref("CancelResult")}},
                        "links": _job_links("GetJob"),
                    },
                    "401": _error("Missing, unknown or revoked key."),
                    "404": _error("No such job in the key's org."),
                    "503": UNAVAILABLE,
                },
            }
        },
        "/api/admin/metrics": {
            "get": {
                "operationId": "getOrgMetrics",
                "summary": "An org's metrics over 7, 30 or 90 days (docs/metrics.md).",
                "description": "The admin token reads any org (`org_id` required); an org API key with the admin "
                "role (`proactive keys create --role admin`) reads its own org only (`org_id` optional), and "
                "another org answers 404 like a missing one. A key with the events role (the default) is 403.",
                "parameters": [
                    {
                        "name": "org_id",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "format": "uuid"},
                    },
                    {
                        "name": "range",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": ["7d", "30d", "90d"], "default": "7d"},
                    },
                ],
                "responses": {
                    "200": {
                        "description": "The metrics.",
                        "content": {"application/json": {"schema": _ref("OrgMetrics")}},
                    },
                    "400": _error("Unknown `range` (`accepted` lists the values) or no `org_id` with the admin token."),
                    "401": _error("Missing, unknown or revoked key."),
                    "403": _error(
                        "`forbidden`: the key has the events role, not admin (`role`, `required_role`); the message "
                        "says how to make an admin key (`proactive keys create --role admin`)."
                    ),
                    "404": _error("No such org, a malformed id, or another org than the key's."),
                    "503": UNAVAILABLE,
                },
            }
        },
        "/api/admin/smoke": {
            "post": {
                "operationId": "runSmoke",
                "summary": "Run the smoke test: fire the nine sequences in dry-run and report each.",
                "description": "Admin token only. Answers 200 with the report whatever the outcome: `ok` is false "
                "when an event failed. Runs on the fleet's workers (an in-process worker on the embedded broker) "
                "and holds the request until every event settled or timed out.",
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "org_id": {
                                        "type": "string",
                                        "format": "uuid",
                                        "description": "Default: the only org.",
                                    },
                                    "sequences": {
                                        "type": "array",
                                        "items": {"type": "string"},
                                        "description": "Event types to fire (default: all nine).",
                                    },
                                    "timeout": {
                                        "type": "number",
                                        "exclusiveMinimum": 0,
                                        "maximum": 120,
                                        "default": 30,
                                        "description": "Seconds each event may take to settle.",
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "The report.",
                        "content": {"application/json": {"schema": _ref("SmokeReport")}},
                    },
                    "400": _error("Invalid JSON or option."),
                    "401": _error("Missing or unknown token."),
                    "403": _error("An org API key (whatever its role): the smoke test needs the admin token."),
                    "404": _error("No such org (or several orgs and no `org_id`)."),
                    "415": _error("A body that is not application/json."),
                    "422": _error("`invalid_event`: an unknown sequence in `sequences`."),
                    "503": UNAVAILABLE,
                },
            }
        },
        "/webhooks/recording": {
            "post": {
                "operationId": "recordingReady",
                "summary": "A meeting recorder's 'recording ready' callback.",
                "description": (
                    f"Signed: `{SIGNATURE_HEADER}: sha256=<hex>` is HMAC-SHA256 under RECORDING_WEBHOOK_SECRET of "
                    f"`<timestamp>.<raw body>`, `{TIMESTAMP_HEADER}` in unix seconds within {SIGNATURE_WINDOW_S} s "
                    "of now. Upserts the meeting; fires meeting_ended when more than one person attended."
                ),
                "security": [{"recordingSignature": [], "recordingTimestamp": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RecordingReady")}},
                },
                "responses": {
                    "202": {
                        "description": "Meeting stored, meeting_ended fired.",
                        "content": {"application/json": {"schema": _ref("RecordingResult")}},
                    },
                    "200": {
                        "description": "Meeting stored; duplicate delivery or no job (see `reason`).",
                        "content": {"application/json": {"schema": _ref("RecordingResult")}},
                    },
                    "400": _error("Invalid JSON."),
                    "401": _error("Missing, stale or wrong signature."),
                    "413": _error("The body is over 1 MiB."),
                    "415": _error("Content-Type is not application/json."),
                    "422": _error(
                        "`invalid_event`: the body does not validate, the org is unknown, or user_email is not in it."
                    ),
                    "503": UNAVAILABLE,
                },
            }
        },
        "/webhooks/gmail": {
            "post": {
                "operationId": "gmailPush",
                "summary": "Gmail's Pub/Sub push: something changed in a mailbox.",
                "description": (
                    "Sent by a Pub/Sub push subscription with an OIDC token: signed by Google (GOOGLE_CERTS_URL), "
                    "issuer accounts.google.com, `aud` = PUBSUB_AUDIENCE, `email` = PUBSUB_SERVICE_ACCOUNT "
                    "(verified). Records the push once per `messageId` and asks for a history sync of every "
                    "active Google integration with that address (one per org). A malformed body or an unknown "
                    "mailbox is recorded in rejected_events and still answered 204, so Pub/Sub does not redeliver it."
                ),
                "security": [{"pubsubOidc": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("PubSubPush")}},
                },
                "responses": {
                    "204": {"description": "Acknowledged: recorded (or a redelivery of a recorded messageId)."},
                    "401": _error("Missing or invalid OIDC token, or PUBSUB_AUDIENCE / PUBSUB_SERVICE_ACCOUNT unset."),
                    "503": {
                        **UNAVAILABLE,
                        "description": "The database or Google's certificates are unreachable: Pub/Sub redelivers.",
                    },
                },
            }
        },
    }


def _pubsub_schema() -> dict[str, Any]:
    """Pub/Sub's push envelope as Gmail sends it."""
    return {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": {
                "type": "object",
                "required": ["data", "messageId"],
                "properties": {
                    "data": {
                        "type": "string",
                        "contentEncoding": "base64",
                        "description": 'Base64(url) of JSON `{"emailAddress": "...", "historyId": "..."}`.',
                    },
                    "messageId": {"type": "string", "maxLength": 200},
                    "publishTime": {"type": "string", "format": "date-time"},
                },
            },
            "subscription": {"type": "string"},
        },
    }


@lru_cache(maxsize=1)
def document() -> dict[str, Any]:
    """The whole document (built once per process)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Proactive API",
            "version": "1",
            "description": "Fire events into Proactive's sequences and follow their jobs (reference: docs/events.md).",
        },
        "security": [{"bearer": []}],
        "paths": _paths(),
        "components": {
            "schemas": {**_model_schemas(), **_response_schemas(), "PubSubPush": _pubsub_schema()},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An org API key (`proactive keys create`; role events or admin) or ADMIN_TOKEN.",
                },
                "recordingSignature": {"type": "apiKey", "in": "header", "name": SIGNATURE_HEADER},
                "recordingTimestamp": {"type": "apiKey", "in": "header", "name": TIMESTAMP_HEADER},
                "pubsubOidc": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The OIDC token Pub/Sub attaches to each push (of PUBSUB_SERVICE_ACCOUNT).",
                },
            },
        },
    }
