"""The API document and its two readers: GET /openapi.json, /docs (Swagger UI), /redoc (ReDoc).

The pages load only files served from here (kato_web/web/static/, vendored), so they work
without network access.
"""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template, send_from_directory

from kato_web.web.openapi import document, undocumented

bp = Blueprint("docs", __name__, template_folder="templates", static_folder=None)
STATIC = __file__.rsplit("/", 1)[0] + "/static"
ASSET_MAX_AGE = 24 * 3600
# The pages may load nothing from elsewhere (ReDoc's bundle links a logo and icons on a CDN:
# the browser refuses those, and the page works without them). Both readers style inline and
# ReDoc starts a worker from a blob.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
               "base-uri 'none'; frame-ancestors 'self'")


def _page(template: str):
    response = current_app.make_response(render_template(template))
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@bp.get("/openapi.json")
@undocumented
def openapi_json():
    return jsonify(document(current_app))


@bp.get("/docs")
@undocumented
def swagger_ui():
    return _page("docs/swagger.html")


@bp.get("/redoc")
@undocumented
def redoc():
    return _page("docs/redoc.html")


@bp.get("/docs/static/<path:filename>")
@undocumented
def asset(filename):
    return send_from_directory(STATIC, filename, max_age=ASSET_MAX_AGE)
