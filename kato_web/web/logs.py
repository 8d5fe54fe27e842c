"""Logging: one format for gunicorn, the app and errors (KATO_LOG_FORMAT=text|json).

In "json" mode every line on stdout/stderr is one JSON object: `ts` (Unix seconds), `level`,
`logger`, `pid`, `message`, plus the fields of structured records (the access log's method,
path, status, ms, trace id) and `exception` when there is a traceback. gunicorn's own loggers
get the same formatter through `gunicorn_logconfig` (gunicorn.conf.py), and the app's logger
shares gunicorn's error handler when it runs under gunicorn.
"""
from __future__ import annotations

import json
import logging
import sys

TEXT_FORMAT = "%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", None)
        out = {"ts": round(record.created, 3), "level": record.levelname.lower(), "logger": record.name,
               "pid": record.process,
               # A structured record may carry a short message of its own (its text form is
               # the fields themselves, as in the access log).
               "message": getattr(record, "json_message", None) or record.getMessage()}
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), default=str)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def app_logger(log_format: str = "text") -> logging.Logger:
    """The `kato_web` logger, set up once: gunicorn's error handlers when under gunicorn
    (already in the chosen format), else its own stderr handler in that format."""
    log = logging.getLogger("kato_web")
    if not log.handlers:
        gunicorn_error = logging.getLogger("gunicorn.error")
        if gunicorn_error.handlers:
            for handler in gunicorn_error.handlers:
                log.addHandler(handler)
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(formatter(log_format))
            log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.INFO)
    return log


def gunicorn_logconfig(log_format: str, level: str) -> dict:
    """gunicorn's `logconfig_dict`: its error and access loggers in our JSON format."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "kato_web.web.logs.JsonFormatter"}},
        "handlers": {
            "error_console": {"class": "logging.StreamHandler", "formatter": "json",
                              "stream": "ext://sys.stderr"},
            "access_console": {"class": "logging.StreamHandler", "formatter": "json",
                               "stream": "ext://sys.stdout"},
        },
        "root": {"level": "WARNING", "handlers": ["error_console"]},
        "loggers": {
            "gunicorn.error": {"level": level.upper(), "handlers": ["error_console"], "propagate": False,
                               "qualname": "gunicorn.error"},
            "gunicorn.access": {"level": "INFO", "handlers": ["access_console"], "propagate": False,
                                "qualname": "gunicorn.access"},
        },
    }
