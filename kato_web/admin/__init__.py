"""The admin web UI, mounted at /admin: settings, threshold preview, knowledge and sessions."""
from kato_web.admin.views import bp

__all__ = ["bp"]
