"""The API schema states every answer an operation can give, errors included.

Every error body is ``{"error": {"code", "message", "details"}}`` (config/errors.py). drf-spectacular documents
the success answers each view declares; this post-processing hook adds, to every operation, the error answers
the shared machinery can give it, so that a client generated from the schema (and schemathesis, which checks
every answer against it) knows them:

- 400 when the operation takes parameters or a body (validation), 413/415 when it takes a body;
- 401 and 403 when it needs authentication (the permission matrix refuses);
- 404 when its path names an object (or a path parameter does not parse), 409 for writes (idempotency keys,
  state conflicts), 429 everywhere (throttling).
"""

from __future__ import annotations

ERROR_SCHEMA_NAME = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
            "required": ["code", "message"],
        }
    },
    "required": ["error"],
}
DESCRIPTIONS = {
    "400": "The request was not valid.",
    "401": "Not authenticated, or the token expired.",
    "403": "The permission matrix or the plan refuses this request.",
    "404": "No such object visible to the caller.",
    "409": "Conflicts with the object's state or a previous request with the same idempotency key.",
    "413": "The body is too large.",
    "415": "Unsupported media type.",
    "429": "Too many requests; retry after the Retry-After header.",
}
WRITES = {"post", "put", "patch", "delete"}
HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def error_codes(method: str, operation: dict, path_parameters: list) -> list[str]:
    parameters = [*path_parameters, *operation.get("parameters", [])]
    has_body = "requestBody" in operation
    codes = ["429"]
    if parameters or has_body:
        codes.append("400")
    if has_body:
        codes += ["413", "415"]
    if operation.get("security") != [{}]:
        codes += ["401", "403"]
    if any(p.get("in") == "path" for p in parameters):
        codes.append("404")
    if method in WRITES:
        codes.append("409")
    return codes


def add_error_responses(result: dict, generator, request, public) -> dict:
    """drf-spectacular POSTPROCESSING_HOOKS entry: see the module docstring."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(ERROR_SCHEMA_NAME, ERROR_SCHEMA)
    reference = {"$ref": f"#/components/schemas/{ERROR_SCHEMA_NAME}"}
    for path_item in result.get("paths", {}).values():
        path_parameters = path_item.get("parameters", [])
        for method, operation in path_item.items():
            if method not in HTTP_METHODS:
                continue
            responses = operation.setdefault("responses", {})
            for code in error_codes(method, operation, path_parameters):
                answer = responses.setdefault(code, {"description": DESCRIPTIONS[code]})
                answer.setdefault("content", {}).setdefault("application/json", {"schema": reference})
    return result
