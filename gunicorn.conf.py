"""gunicorn settings for kato-web, from KATO_* environment variables.

Why these choices:
- worker_class "gthread": each request is short and mostly waits on the database, so
  a few threads per process overlap that wait, and HTTP keep-alive works (sync workers
  close every connection). Processes share nothing but the database and the cache.
- workers: 2 × cores + 1 by default (KATO_WORKERS), the usual rule for I/O-bound apps.
- no preload: each worker opens its own database pool after the fork.
- max_requests with jitter: workers are recycled now and then, staggered, so a slow
  leak can never build up and never all workers restart at once.
"""
import multiprocessing
import os

bind = os.environ.get("KATO_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("KATO_WORKERS", multiprocessing.cpu_count() * 2 + 1))
worker_class = "gthread"
threads = int(os.environ.get("KATO_THREADS", "4"))
keepalive = int(os.environ.get("KATO_KEEPALIVE", "30"))
timeout = int(os.environ.get("KATO_TIMEOUT", "120"))
graceful_timeout = int(os.environ.get("KATO_GRACEFUL_TIMEOUT", "30"))
max_requests = int(os.environ.get("KATO_MAX_REQUESTS", "20000"))
max_requests_jitter = int(os.environ.get("KATO_MAX_REQUESTS_JITTER", "2000"))
backlog = int(os.environ.get("KATO_BACKLOG", "2048"))
preload_app = False
accesslog = "-" if os.environ.get("KATO_ACCESS_LOG", "0").lower() in {"1", "true", "yes", "on"} else None
errorlog = "-"
loglevel = os.environ.get("KATO_LOG_LEVEL", "info")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
