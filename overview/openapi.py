"""The live streams in the OpenAPI document (a drf-spectacular postprocessing hook): they are plain Django views
(Server-Sent Events, overview/streams.py), which drf-spectacular does not see, so they are documented here, as
what they answer, `text/event-stream`."""

from audit.filtersets import STREAM_PARAMS  # the audit stream takes the list's filters but its times

SSE = {
    "description": "Server-Sent Events: `retry`, then `id:`/`event:`/`data:` frames (each `data` one JSON object), "
    "and `: keep-alive` comments. Resume by sending the last `id` as `Last-Event-ID`.",
    "content": {"text/event-stream": {"schema": {"type": "string"}}},
}
LAST_EVENT_ID = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "schema": {"type": "string"},
    "description": "The last `id` received: the stream goes on after it (what a browser's EventSource sends itself).",
}


def _stream(summary: str, parameters: list[dict], tag: str) -> dict:
    answers = {
        "200": SSE,
        "400": {"description": "A filter or Last-Event-ID the stream does not take."},
        "401": {"description": "Not authenticated."},
        "429": {"description": "Too many open streams (CONTROLPLANE_STREAMS_PER_PRINCIPAL)."},
        "503": {"description": "The server's stream limit is reached, or it is stopping."},
    }
    operation = {"operationId": summary, "summary": summary, "tags": [tag], "security": [{"bearer": []}]}
    return {"get": {**operation, "parameters": [*parameters, LAST_EVENT_ID], "responses": answers}}


def add_streams(result, generator, request, public):
    query = [{"name": p, "in": "query", "required": False, "schema": {"type": "string"}} for p in STREAM_PARAMS]
    run = {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}, "description": "The run's id."}
    paths = result.setdefault("paths", {})
    paths["/api/audit-events/stream"] = _stream("audit_events_stream", query, "audit-events")
    paths["/api/workflow-runs/{id}/logs/stream"] = _stream("workflow_runs_logs_stream", [run], "workflow-runs")
    paths["/api/streams/"] = {
        "get": {
            "operationId": "streams_status",
            "summary": "Your open streams and the limits (an admin: the process's own figures too).",
            "tags": ["streams"],
            "security": [{"bearer": []}],
            "responses": {
                "200": {
                    "description": "Open streams and limits.",
                    "content": {"application/json": {"schema": {"type": "object", "additionalProperties": True}}},
                }
            },
        }
    }
    return result
