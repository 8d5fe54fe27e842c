"""How a view reaches the service context."""
from flask import Blueprint, current_app, g, jsonify

from kato_web.services.context import Context
from kato_web.web import gcpause


def ctx() -> Context:
    return current_app.extensions["kato"]


def mark_session(session_id: str) -> None:
    """Echo the session id in X-Session-ID (api.md §1), like KATO's middleware."""
    g.session_id = session_id


def add_session_route(bp: Blueprint, rule: str, method: str, func, large_answer: bool = False,
                      doc=None) -> None:
    """Expose `func(ctx, session_id)` as a view that answers its result as JSON.

    `doc`: the view's OpenAPI description (kato_web.web.openapi.Operation).

    `large_answer`: the answer can be tens of thousands of objects (predictions), so the
    garbage collector is paused until they are serialised and freed (kato_web/web/gcpause.py).
    """
    def answer(session_id):
        result = func(ctx(), session_id)
        mark_session(session_id)
        return jsonify(result)

    if large_answer:
        def view(session_id):
            with gcpause.paused():
                return answer(session_id)
    else:
        view = answer
    view.__name__ = func.__name__
    if doc is not None:
        view.openapi = doc
    bp.add_url_rule(rule, endpoint=func.__name__, view_func=view, methods=[method])
