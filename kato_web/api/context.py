"""How a view reaches the service context."""
from flask import current_app, g

from kato_web.services.context import Context


def ctx() -> Context:
    return current_app.extensions["kato"]


def mark_session(session_id: str) -> None:
    """Echo the session id in X-Session-ID (api.md §1), like KATO's middleware."""
    g.session_id = session_id
