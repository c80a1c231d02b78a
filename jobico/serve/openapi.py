"""The listener's OpenAPI document: the shapes of its answers and bodies, and the route options
that document the two POST routes, whose bodies the ingest pipeline parses itself."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            "additionalProperties": True,
        }
    },
}
IDS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["ids"],
    "properties": {"ids": {"type": "array", "items": {"type": "string"}}},
}
EVENT_BODY: dict[str, Any] = {"description": "One JSON event, checked against its schema"}
BATCH_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "array", "minItems": 1, "items": EVENT_BODY}},
}
HEALTHY: dict[str, Any] = {"type": "object", "properties": {"status": {"const": "ok"}}}
HEALTH_ANSWERS: dict[int, Any] = {
    200: ("The queue and control actors can be reached", HEALTHY),
    503: "The queue or control actors cannot be reached",
}
POST_ANSWERS: dict[int, Any] = {
    202: ("Queued durably; the new event ids, in order", IDS_SCHEMA),
    400: "Malformed JSON, no events, too many events or nested too deep",
    401: "The event requires credentials (an ingest key or a webhook signature): missing or bad",
    404: "Unknown tenant or event, or a job's result event without an auth: of its own",
    413: "Body over the size limit",
    422: "An event fails its JSON Schema or has no ordering key; nothing was queued",
    429: "The tenant's queue is full, or the tenant is over its rate; see Retry-After",
    503: "The queue cannot be reached",
}


def responses(answers: dict[int, Any]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses`: each status with its text, and its schema or else the error's."""
    out: dict[int | str, dict[str, Any]] = {}
    for status, answer in answers.items():
        text, schema = answer if isinstance(answer, tuple) else (answer, ERROR_SCHEMA)
        out[status] = {"description": text, "content": {"application/json": {"schema": schema}}}
    return out


def post_docs(body_schema: dict[str, Any], summary: str) -> dict[str, Any]:
    """Route options documenting a POST whose body the handler parses itself (for speed)."""
    return {
        "status_code": 202,
        "summary": summary,
        "response_class": JSONResponse,
        "responses": responses(POST_ANSWERS),
        "openapi_extra": {
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        },
    }
