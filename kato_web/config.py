"""Settings read from KATO_* environment variables, in one place.

Every variable has a documented default (see README.md, "Configuration"). The
server-side defaults of the 22 session settings (api.md §5.2) are read here too;
the admin page can override them at run time through the `settings` table.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

# The service's version, as GET / and GET /status report it (and the package's, pyproject.toml).
VERSION = "1.0.0"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# An installed kato-web carries copies of the repository's root-level runtime files
# (gunicorn.conf.py, alembic.ini, alembic/) here; setup.py puts them there.
BUNDLED_ROOT = Path(__file__).resolve().parent / "_project"


def in_source_checkout() -> bool:
    return (PROJECT_ROOT / "alembic.ini").is_file() and (PROJECT_ROOT / "alembic").is_dir()


def project_file(name: str) -> Path:
    """Return a root-level project file (`gunicorn.conf.py`, `alembic.ini`, `alembic`):
    the repository's in a checkout, the package's copy in an installed kato-web."""
    root = PROJECT_ROOT if in_source_checkout() else BUNDLED_ROOT
    path = root / name
    if not path.exists():
        raise FileNotFoundError(f"{name} is missing from {root}: reinstall kato-web")
    return path


# The checkout's instance/ (make run), or ./instance for an installed kato-web.
INSTANCE_DIR = (PROJECT_ROOT if in_source_checkout() else Path.cwd()) / "instance"

# The 22 session configuration keys, in the order KATO emits them (api.md §5.5),
# with kato-web's defaults (spec/README.md decision 3: filter_pipeline is []).
SESSION_DEFAULTS: dict = {
    "max_pattern_length": 0,
    "persistence": 5,
    "recall_threshold": 0.1,
    "indexer_type": "VI",
    "max_predictions": 100,
    "sort_symbols": True,
    "process_predictions": True,
    "use_token_matching": True,
    "stm_mode": "CLEAR",
    "rank_sort_algo": "potential",
    "filter_pipeline": [],
    "length_min_ratio": 0.5,
    "length_max_ratio": 2.0,
    "jaccard_threshold": 0.3,
    "jaccard_min_overlap": 2,
    "minhash_threshold": 0.7,
    "minhash_bands": 20,
    "minhash_rows": 5,
    "minhash_num_hashes": 100,
    "bloom_false_positive_rate": 0.01,
    "max_candidates_per_stage": 100000,
    "enable_filter_metrics": True,
}


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_bool(name: str, default: bool) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = _env(name)
    return default if value is None else int(value)


def _parse_default(key: str, raw: str):
    """Turn an environment string into the type of the session setting `key`."""
    template = SESSION_DEFAULTS[key]
    if isinstance(template, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(template, int):
        return int(raw)
    if isinstance(template, float):
        return float(raw)
    if isinstance(template, list):
        raw = raw.strip()
        if raw.startswith("["):
            return list(json.loads(raw))
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def session_defaults_from_env() -> dict:
    """Return the 22 session defaults, each overridable by KATO_<KEY upper-case>."""
    defaults = {}
    for key, value in SESSION_DEFAULTS.items():
        raw = _env("KATO_" + key.upper())
        defaults[key] = value if raw is None else _parse_default(key, raw)
    return defaults


def default_database_url() -> str:
    return "sqlite:///" + str(INSTANCE_DIR / "kato.sqlite3")


# gunicorn's defaults, measured on 2 cores (docs/benchmarks.md, gunicorn.conf.py).
DEFAULT_THREADS = 4


def default_workers() -> int:
    return (os.cpu_count() or 1) * 2 + 1


@dataclass
class ServerSettings:
    """gunicorn's settings: read by gunicorn.conf.py, reported by /concurrency."""

    bind: str = "127.0.0.1:8000"
    workers: int = field(default_factory=default_workers)
    threads: int = DEFAULT_THREADS
    keepalive: int = 30
    timeout: int = 120
    graceful_timeout: int = 30
    max_requests: int = 20000
    max_requests_jitter: int = 2000
    backlog: int = 2048
    access_log: bool = False
    log_level: str = "info"

    @classmethod
    def from_env(cls) -> "ServerSettings":
        return cls(
            bind=_env("KATO_BIND", "127.0.0.1:8000"),
            workers=_env_int("KATO_WORKERS", default_workers()),
            threads=_env_int("KATO_THREADS", DEFAULT_THREADS),
            keepalive=_env_int("KATO_KEEPALIVE", 30),
            timeout=_env_int("KATO_TIMEOUT", 120),
            graceful_timeout=_env_int("KATO_GRACEFUL_TIMEOUT", 30),
            max_requests=_env_int("KATO_MAX_REQUESTS", 20000),
            max_requests_jitter=_env_int("KATO_MAX_REQUESTS_JITTER", 2000),
            backlog=_env_int("KATO_BACKLOG", 2048),
            access_log=_env_bool("KATO_ACCESS_LOG", False),
            log_level=_env("KATO_LOG_LEVEL", "info"),
        )


@dataclass
class Config:
    """Everything the app reads from the environment."""

    database_url: str = field(default_factory=default_database_url)
    service_name: str = "kato"
    session_ttl: int = 3600
    session_auto_extend: bool = True
    max_request_bytes: int = 10 * 1024 * 1024
    # One pooled connection per gunicorn thread, and as many again as overflow: a
    # request holds at most two at once (observe-time predictions read the node's
    # knowledge in a second transaction), so threads never wait on the pool.
    db_pool_size: int = DEFAULT_THREADS
    db_max_overflow: int = DEFAULT_THREADS
    # Test a pooled connection before use when it sat idle longer than this (store/db.py).
    db_pre_ping: bool = True
    db_ping_idle_seconds: float = 5.0
    # Responses over gzip_min_bytes are gzipped for clients that accept it; level 1 because
    # CPU, not bandwidth, runs out first. Levels 0-3 use ISA-L, 4-9 zlib (web/compression.py).
    gzip_min_bytes: int = 1024
    gzip_level: int = 1
    # How often a worker pushes its request figures to the metrics shared by all workers.
    metrics_flush_seconds: float = 1.0
    server: ServerSettings = field(default_factory=ServerSettings)
    session_defaults: dict = field(default_factory=lambda: dict(SESSION_DEFAULTS))
    admin_password: str | None = None
    secret_key: str | None = None
    expose_worker_pid: bool = False
    # orjson for responses (web/json_provider.py); load the prediction kernels in the background
    # when a worker starts (services/knowledge.py); the compiled prediction path (engine/index/).
    fast_json: bool = True
    warm_up: bool = True
    fast_predict: bool = True
    # Give freed heap memory back to the OS once responses larger than trim_after_bytes have
    # stopped for trim_delay_seconds (web/heap.py; 0 bytes: never).
    trim_after_bytes: int = 8 * 1024 * 1024
    trim_delay_seconds: float = 5.0
    testing: bool = False

    @classmethod
    def from_env(cls) -> "Config":
        server = ServerSettings.from_env()
        return cls(
            database_url=_env("KATO_DATABASE_URL", default_database_url()),
            service_name=_env("KATO_SERVICE_NAME", "kato"),
            session_ttl=_env_int("KATO_SESSION_TTL", 3600),
            session_auto_extend=_env_bool("KATO_SESSION_AUTO_EXTEND", True),
            max_request_bytes=_env_int("KATO_MAX_REQUEST_BYTES", 10 * 1024 * 1024),
            db_pool_size=_env_int("KATO_DB_POOL_SIZE", server.threads),
            db_max_overflow=_env_int("KATO_DB_MAX_OVERFLOW", server.threads),
            db_pre_ping=_env_bool("KATO_DB_PRE_PING", True),
            db_ping_idle_seconds=float(_env("KATO_DB_PING_IDLE_SECONDS", "5")),
            gzip_min_bytes=_env_int("KATO_GZIP_MIN_BYTES", 1024),
            gzip_level=_env_int("KATO_GZIP_LEVEL", 1),
            metrics_flush_seconds=float(_env("KATO_METRICS_FLUSH_SECONDS", "1.0")),
            server=server,
            session_defaults=session_defaults_from_env(),
            fast_json=_env_bool("KATO_FAST_JSON", True),
            warm_up=_env_bool("KATO_WARM_UP", True),
            fast_predict=_env_bool("KATO_FAST_PREDICT", True),
            trim_after_bytes=_env_int("KATO_TRIM_AFTER_BYTES", 8 * 1024 * 1024),
            trim_delay_seconds=float(_env("KATO_TRIM_DELAY_SECONDS", "5.0")),
            admin_password=_env("KATO_ADMIN_PASSWORD"),
            secret_key=_env("KATO_SECRET_KEY"),
            expose_worker_pid=_env_bool("KATO_EXPOSE_WORKER_PID", False),
        )
