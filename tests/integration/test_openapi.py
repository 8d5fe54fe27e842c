"""The OpenAPI document: valid 3.1, describes every route, and the live answers conform to it."""
from __future__ import annotations

from urllib.parse import quote

import pytest
from openapi_spec_validator import validate

from kato_web.web.openapi import UNDOCUMENTED, Operation, described_routes, is_excluded, openapi_path
from tests.openapi_check import Contract

# Left out of the document on purpose: the admin HTML pages (/admin/…, blueprint "admin") and
# Flask's static files (kato_web.web.openapi.is_excluded), and the documentation routes
# themselves (/openapi.json, /docs, /redoc, /docs/static/…, marked `undocumented`).
DOCUMENTATION_ROUTES = {"/openapi.json", "/docs", "/redoc", "/docs/static/<path:filename>"}


@pytest.fixture
def contract(client):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    return Contract(resp.get_json())


def test_document_is_valid_openapi_3_1(contract):
    validate(contract.document)  # openapi-spec-validator picks the 3.1 rules from "openapi"
    assert contract.document["openapi"].startswith("3.1")
    assert contract.document["info"]["x-kato-api-version"] == "3.10.1"


def test_every_route_is_described(app, contract):
    missing, hidden = [], set()
    for rule, method, operation in described_routes(app):
        if operation == UNDOCUMENTED:
            hidden.add(rule.rule)
            continue
        if not isinstance(operation, Operation):
            missing.append(f"{method} {rule.rule} ({rule.endpoint})")
            continue
        path, _ = openapi_path(rule.rule)
        assert method.lower() in contract.document["paths"].get(path, {}), (method, path)
    assert not missing, "routes without an OpenAPI description (use @describe): " + ", ".join(missing)
    assert hidden == DOCUMENTATION_ROUTES
    admin = [r.rule for r in app.url_map.iter_rules() if is_excluded(r.endpoint)]
    assert admin and all(r.startswith("/admin") or r.startswith("/static") for r in admin)


def test_request_schemas_are_the_validating_models(contract):
    from kato_web.api.schemas import ObservationRequest

    body = contract.operation("/sessions/{session_id}/observe", "post")["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ObservationRequest")
    schema = contract.document["components"]["schemas"]["ObservationRequest"]
    assert set(schema["properties"]) == set(ObservationRequest.model_fields)
    config = contract.operation("/sessions/{session_id}/config", "post")["requestBody"]
    props = config["content"]["application/json"]["schema"]["properties"]
    assert props["recall_threshold"]["anyOf"][0] == {"type": "number", "minimum": 0.0, "maximum": 1.0}


def _call(client, contract, method, template, path=None, **kwargs):
    resp = client.open(path or template, method=method, **kwargs)
    body = resp.get_json(silent=True) if resp.mimetype == "application/json" else resp.get_data(as_text=True)
    contract.check(template, method, resp.status_code, body, resp.content_type)
    return resp


def test_walkthrough_answers_conform(client, contract):
    """Every documented operation, called for real; successes and KATO's error shapes validate."""
    seen = set()

    def call(method, template, path=None, **kwargs):
        seen.add((template, method.lower()))
        return _call(client, contract, method, template, path, **kwargs)

    sid = call("POST", "/sessions", json={"node_id": "doc-node", "metadata": {"a": 1}, "ttl_seconds": 600,
                                          "config": {"recall_threshold": 0.2}}).get_json()["session_id"]
    s = f"/sessions/{sid}"
    for strings in (["b", "a"], ["c"], ["d"]):
        call("POST", "/sessions/{session_id}/observe", s + "/observe",
             json={"strings": strings, "emotives": {"joy": 0.5}, "metadata": {"k": "v"}})
    call("POST", "/sessions/{session_id}/observe", s + "/observe", json={"vectors": [[1, 2]], "strings": ["v"]})
    call("GET", "/sessions/{session_id}/stm", s + "/stm")
    name = call("POST", "/sessions/{session_id}/learn", s + "/learn").get_json()["pattern_name"]
    assert name.startswith("PTRN|")
    call("POST", "/sessions/{session_id}/observe-sequence", s + "/observe-sequence",
         json={"observations": [{"strings": ["a", "b"], "unique_id": "u1"}, {"strings": ["c"]}],
               "learn_at_end": False})
    preds = call("GET", "/sessions/{session_id}/predictions", s + "/predictions").get_json()
    assert preds["count"] >= 1 and preds["future_potentials"]
    call("GET", "/sessions/{session_id}/percept-data", s + "/percept-data")
    call("GET", "/sessions/{session_id}/cognition-data", s + "/cognition-data")
    call("GET", "/sessions/{session_id}/config", s + "/config")
    call("POST", "/sessions/{session_id}/config", s + "/config",
         json={"config": {"max_predictions": 5, "stm_mode": "ROLLING"}})
    call("POST", "/sessions/{session_id}/extend", s + "/extend?ttl_seconds=900")
    call("GET", "/sessions/{session_id}/exists", s + "/exists")
    call("GET", "/sessions/{session_id}", s)
    call("GET", "/sessions/count")
    call("GET", "/pattern/{pattern_id}", "/pattern/" + quote(name, safe="") + "?node_id=doc-node")
    call("GET", "/pattern/{pattern_id}", "/pattern/nope", headers={"x-node-id": "doc-node"})
    call("GET", "/metrics/{metric_name}", "/metrics/kato_requests_total")
    call("POST", "/cache/invalidate", "/cache/invalidate?session_id=" + sid)
    call("GET", "/metrics", headers={"Accept": "text/plain"})
    call("POST", "/sessions/{session_id}/clear-stm", s + "/clear-stm")

    # KATO's error shapes (api.md §2.2), each validated against the document.
    assert call("POST", "/sessions/{session_id}/learn", s + "/learn").status_code == 400
    assert call("POST", "/sessions/{session_id}/config", s + "/config",
                json={"config": {"max_predictions": 0}}).status_code == 400
    assert call("POST", "/sessions/{session_id}/observe", s + "/observe",
                json={"vectors": [[1, 2], [1]]}).status_code == 400
    assert call("POST", "/sessions", json={"node_id": 5}).status_code == 422
    assert call("POST", "/sessions", data="{", content_type="application/json").status_code == 422
    assert call("POST", "/sessions/{session_id}/observe-sequence", s + "/observe-sequence",
                json={"observations": "no"}).status_code == 422
    assert call("POST", "/sessions/{session_id}/extend", s + "/extend?ttl_seconds=x").status_code == 422
    assert call("GET", "/stats", "/stats?minutes=x").status_code == 422
    assert call("GET", "/metrics/{metric_name}", "/metrics/nothing").status_code == 404
    assert call("GET", "/sessions/{session_id}", "/sessions/gone").status_code == 404
    assert call("POST", "/sessions/{session_id}/observe", "/sessions/gone/observe",
                json={"strings": ["a"]}).status_code == 404
    call("POST", "/sessions/{session_id}/clear-all", s + "/clear-all")
    call("DELETE", "/sessions/{session_id}", s)
    assert call("DELETE", "/sessions/{session_id}", s).status_code == 404

    # Whatever the walkthrough above does not name (routes added later), called plainly: a
    # fresh session and known values fill the path; the answer must be documented.
    sid = client.post("/sessions", json={"node_id": "doc-node"}).get_json()["session_id"]
    values = {"session_id": sid, "pattern_id": "PTRN|0", "metric_name": "kato_requests_total", "symbol": "a"}
    for path, methods in contract.document["paths"].items():
        for method in methods:
            if (path, method) in seen:
                continue
            concrete = path
            for key, value in values.items():
                concrete = concrete.replace("{" + key + "}", quote(value, safe=""))
            assert "{" not in concrete, f"add a value for {path} to this test"
            call(method.upper(), path, concrete, json={} if method in ("post", "put", "patch") else None)
    assert seen == {(p, m) for p, ms in contract.document["paths"].items() for m in ms}


def test_documentation_pages_are_served_locally(client):
    swagger = client.get("/docs")
    assert swagger.status_code == 200 and b"swagger-ui-bundle.js" in swagger.data
    assert b"http://" not in swagger.data and b"https://" not in swagger.data
    redoc = client.get("/redoc")
    assert redoc.status_code == 200 and b"redoc.standalone.js" in redoc.data
    assert b"https://" not in redoc.data
    for asset in ("swagger-ui/swagger-ui-bundle.js", "swagger-ui/swagger-ui.css", "redoc/redoc.standalone.js",
                  "docs-init.js"):
        resp = client.get("/docs/static/" + asset)
        assert resp.status_code == 200 and len(resp.data) > 100, asset
        resp.close()
    assert client.get("/docs/static/../openapi.py").status_code == 404
    root = client.get("/").get_json()
    assert client.get(root["docs"]).status_code == 200


def test_keys_and_json_bodies_are_described(contract, database_url):
    """The API-key schemes, 401/403 on every guarded operation (not on the open ones), 415 on bodies."""
    doc = contract.document
    assert set(doc["components"]["securitySchemes"]) == {"bearerKey", "apiKeyHeader"}
    assert doc["security"][0] == {}  # no keys configured: open, as KATO is
    for path in ("/health", "/livez", "/readyz"):
        op = contract.operation(path, "get")
        assert op["security"] == [] and "401" not in op["responses"], path
    for path, method in (("/sessions", "post"), ("/sessions/{session_id}/predictions", "get"), ("/metrics", "get")):
        op = contract.operation(path, method)
        assert {"401", "403"} <= set(op["responses"]) and "security" not in op, path
    assert "415" in contract.operation("/sessions/{session_id}/observe", "post")["responses"]
    # A live 401 and 415 answer match what the document says of them.
    from kato_web import create_app
    from tests.conftest import make_config
    keyed = create_app(make_config(database_url, api_keys="key-0123456789abcdef0123"))
    try:
        client = keyed.test_client()
        resp = client.post("/sessions", json={"node_id": "n"})
        assert resp.status_code == 401
        contract.check("/sessions", "post", 401, resp.get_json())
        resp = client.post("/sessions", data="node_id=n", content_type="application/x-www-form-urlencoded",
                           headers={"X-API-Key": "key-0123456789abcdef0123"})
        assert resp.status_code == 415
        contract.check("/sessions", "post", 415, resp.get_json())
    finally:
        keyed.extensions["kato"].db.dispose()
