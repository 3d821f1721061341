"""The OpenAPI 3.1 document served at `/api/openapi.json`.

Request schemas are generated from the pydantic models that validate the requests (the event
envelope, the nine payloads, the recorder's body), so the document cannot drift from what the
server accepts; response schemas, and Pub/Sub's push envelope (Google's format, not a model of
ours), are written here, next to the views that produce them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic.json_schema import models_json_schema

from worker.payloads import PAYLOAD_MODELS, Event
from worker.recordings import SIGNATURE_HEADER, SIGNATURE_WINDOW_S, TIMESTAMP_HEADER, RecordingReady
from worker.states import JobStatus

REF = "#/components/schemas/{model}"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _model_schemas() -> dict[str, Any]:
    """Event, the nine payloads and the recording body as JSON Schema 2020-12 (OpenAPI 3.1's)."""
    models = [Event, *PAYLOAD_MODELS.values(), RecordingReady]
    _, top = models_json_schema([(m, "validation") for m in models], ref_template=REF)
    schemas: dict[str, Any] = top["$defs"]
    event = schemas["Event"]
    event["description"] = (
        "The event envelope (docs/events.md). `payload` must match the schema of the event's `type`; "
        "`idempotency_key` defaults to the type's key, and an existing key answers the existing job."
    )
    event["properties"]["payload"]["description"] = "The payload of `type`: see the `allOf` conditions."
    event["allOf"] = [
        {
            "if": {"properties": {"type": {"const": event_type}}, "required": ["type"]},
            "then": {"properties": {"payload": _ref(model.__name__)}},
        }
        for event_type, model in PAYLOAD_MODELS.items()
    ]
    return schemas


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
                "reason": {"type": "string", "description": "Why the job was skipped (gated events only)."},
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
                    "`unauthorized` (401), `not_found` (404), `payload_too_large` (413), `unavailable` (503)...",
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
                "output": {"description": "The skill's JSON output."},
                "cost_usd": _nullable("number"),
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
                "payload": {"type": "object"},
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


def _paths() -> dict[str, Any]:
    return {
        "/api/events": {
            "post": {
                "operationId": "fireEvent",
                "summary": "Fire one event (runs its sequence).",
                "description": "An org API key may fire for its own org only; the admin token for any org.",
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
                    },
                    "400": _error("Invalid JSON or an invalid `wait`."),
                    "401": _error("Missing, unknown or revoked key."),
                    "403": _error("The key's org is not the event's org."),
                    "413": _error("The body is over 1 MiB."),
                    "415": _error("Content-Type is not application/json."),
                    "422": _error(
                        "`invalid_event`: the envelope or payload does not validate (`errors` lists every field)."
                    ),
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
        "/api/admin/metrics": {
            "get": {
                "operationId": "getOrgMetrics",
                "summary": "An org's metrics over 7, 30 or 90 days (docs/metrics.md).",
                "description": "The admin token reads any org (`org_id` required); an org API key reads its own "
                "org only (`org_id` optional), and another org answers 404 like a missing one.",
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
                    "403": _error("An org API key: the smoke test needs the admin token."),
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
                    "description": "An org API key (`proactive keys create`) or ADMIN_TOKEN.",
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
