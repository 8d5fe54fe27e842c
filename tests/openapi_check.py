"""Check an answer against the OpenAPI document: its status is documented and its body conforms."""
from __future__ import annotations

from jsonschema import Draft202012Validator


class Contract:
    """The document of a running app, to validate its answers."""

    def __init__(self, document: dict):
        self.document = document

    def operation(self, path: str, method: str) -> dict:
        return self.document["paths"][path][method.lower()]

    def response(self, path: str, method: str, status: int) -> dict:
        responses = self.operation(path, method)["responses"]
        assert str(status) in responses, f"{method} {path} answered {status}, not documented: {sorted(responses)}"
        response = responses[str(status)]
        if "$ref" in response:
            response = self.document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        return response

    def check(self, path: str, method: str, status: int, body, content_type: str = "application/json") -> None:
        """Raise AssertionError unless `body` is a documented answer of `method path` with `status`."""
        response = self.response(path, method, status)
        media = content_type.split(";")[0].strip()
        content = response.get("content", {})
        assert media in content, f"{method} {path} {status}: {media} not documented ({sorted(content)})"
        schema = content[media].get("schema")
        if schema is None or media != "application/json":
            return
        validator = Draft202012Validator({**schema, "components": self.document["components"]})
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, f"{method} {path} {status}: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors[:5])
