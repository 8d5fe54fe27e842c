"""Settings read from KATO_* environment variables: typed and validated in one place.

`Config.from_env()` reads every variable, checks it and raises `ConfigError` with one line
naming the variable, the value and what is allowed; every entry point (gunicorn.conf.py,
`python -m kato_web …`) prints that line and stops before serving anything. Constructing
`Config(...)` directly (tests, benchmarks) reads no environment: only the keywords given.

Every variable has a documented default (README.md, "Configuration"). The server-side
defaults of the 22 session settings (api.md §5.2) are read here too, checked with the same
rules as a session's own overrides; the admin page can override them at run time.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kato_web.services import session_config

# The service's version, as GET / and GET /status report it (and the package's, pyproject.toml).
VERSION = "1.1.0"
# The KATO release whose API kato-web answers like (kato-3.10.md decision 13).
KATO_API_VERSION = "3.10.1"

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
ENV_PREFIX = "KATO_"

# The 22 session settings' defaults live with their rules (services/session_config.py).
SESSION_DEFAULTS = session_config.SESSION_DEFAULTS

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A KATO_* variable holds a value that is not allowed; str() is one line for the operator."""


def env_name(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value == "" else value


def _parse_default(key: str, raw: str):
    """Turn an environment string into the type of the session setting `key` (ValueError if it
    cannot be one)."""
    template = SESSION_DEFAULTS[key]
    text = raw.strip()
    if isinstance(template, bool):
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise ValueError("must be a boolean (1/0, true/false, yes/no, on/off)")
    if isinstance(template, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("must be an integer") from None
    if isinstance(template, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("must be a number") from None
    if isinstance(template, list):
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                raise ValueError("must be a JSON list or comma-separated names") from None
            if not isinstance(value, list):
                raise ValueError("must be a JSON list or comma-separated names")
            return value
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def session_defaults_from_env() -> dict:
    """Return the 22 session defaults, each overridable by KATO_<KEY upper-case>, checked with
    the rules of a session's own overrides (api.md §5.2); ConfigError on the first bad one."""
    STM_MODES, check_values = session_config.STM_MODES, session_config.check_values
    defaults = {}
    for key, value in SESSION_DEFAULTS.items():
        name = env_name(key)
        raw = _env(name)
        if raw is None:
            defaults[key] = value
            continue
        try:
            parsed = _parse_default(key, raw)
        except ValueError as err:
            raise ConfigError(f"{name}={raw!r} is not allowed: {err}") from None
        message = check_values({key: parsed}).get(key)
        if key == "stm_mode" and parsed not in STM_MODES:
            message = "Must be one of: " + ", ".join(STM_MODES)
        if message:
            raise ConfigError(f"{name}={raw!r} is not allowed: {message[0].lower()}{message[1:]}")
        if isinstance(value, float):
            parsed = float(parsed)
        defaults[key] = parsed
    return defaults


def default_database_url() -> str:
    return "sqlite:///" + str(INSTANCE_DIR / "kato.sqlite3")


# gunicorn's defaults, measured on 2 cores (docs/operations.md, gunicorn.conf.py): one worker
# per core, eight threads each.
DEFAULT_THREADS = 8


def default_workers() -> int:
    """One worker per core this process may run on (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


class _Settings(BaseModel):
    # Assignment stays unchecked (tests set attributes on a built config); construction and
    # the environment are checked.
    model_config = ConfigDict(validate_default=True, extra="forbid")


class ServerSettings(_Settings):
    """gunicorn's settings: read by gunicorn.conf.py, reported by /concurrency."""

    bind: str = Field(default="127.0.0.1:8000", min_length=1)
    workers: int = Field(default_factory=default_workers, ge=1, le=256)
    threads: int = Field(default=DEFAULT_THREADS, ge=1, le=1024)
    keepalive: int = Field(default=30, ge=0)
    timeout: int = Field(default=120, ge=0)
    graceful_timeout: int = Field(default=30, ge=0)
    max_requests: int = Field(default=20000, ge=0)
    max_requests_jitter: int = Field(default=2000, ge=0)
    backlog: int = Field(default=2048, ge=1)
    # Spread new connections evenly over the workers (web/balanced_worker.py); off: plain gthread.
    balance_connections: bool = True
    access_log: bool = False
    log_level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    # gunicorn's control socket (gunicornc): unset gives each instance its own path under
    # instance/ named after its bind address; "off" disables it.
    control_socket: str | None = None

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def from_env(cls) -> "ServerSettings":
        return _from_env(cls, _EnvServer)


class Config(_Settings):
    """Everything the app reads from the environment."""

    database_url: str = Field(default_factory=default_database_url)
    service_name: str = Field(default="kato", min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    session_ttl: int = Field(default=3600, ge=1)
    session_auto_extend: bool = True
    max_request_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # One pooled connection per gunicorn thread, and as many again as overflow: a
    # request holds at most two at once (observe-time predictions read the node's
    # knowledge in a second transaction), so threads never wait on the pool.
    db_pool_size: int = Field(default=DEFAULT_THREADS, ge=1)
    db_max_overflow: int = Field(default=DEFAULT_THREADS, ge=0)
    # Test a pooled connection before use when it sat idle longer than this (store/db.py).
    db_pre_ping: bool = True
    db_ping_idle_seconds: float = Field(default=5.0, ge=0)
    # Responses over gzip_min_bytes are gzipped for clients that accept it; level 1 because
    # CPU, not bandwidth, runs out first. Levels 0-3 use ISA-L, 4-9 zlib (web/compression.py).
    gzip_min_bytes: int = Field(default=1024, ge=0)
    gzip_level: int = Field(default=1, ge=0, le=9)
    # How often a worker pushes its request figures to the metrics shared by all workers.
    metrics_flush_seconds: float = Field(default=1.0, gt=0)
    server: ServerSettings = Field(default_factory=ServerSettings)
    session_defaults: dict = Field(default_factory=lambda: dict(SESSION_DEFAULTS))
    admin_password: str | None = None
    secret_key: str | None = None
    expose_worker_pid: bool = False
    # orjson for responses (web/json_provider.py); load the prediction kernels before serving
    # (wsgi.py, prepare_kernels); the compiled prediction path (engine/index/).
    fast_json: bool = True
    warm_up: bool = True
    fast_predict: bool = True
    # Give freed heap memory back to the OS once responses larger than trim_after_bytes have
    # stopped for trim_delay_seconds (web/heap.py; 0 bytes: never).
    trim_after_bytes: int = Field(default=8 * 1024 * 1024, ge=0)
    trim_delay_seconds: float = Field(default=5.0, ge=0)
    # Each worker's in-memory node indexes are a cache of the database, bounded by this many MiB:
    # least-recently-used nodes are dropped beyond it (a node larger than the budget alone is
    # still served; 0: no bound). services/knowledge.py, docs/operations.md.
    index_memory_mb: int = Field(default=512, ge=0)
    # Nodes whose indexes gunicorn's master loads before it forks the workers, comma-separated
    # node ids ("*": every node, largest first, within index_memory_mb): the workers share those
    # pages copy-on-write instead of each holding a copy (services/knowledge.py, docs/scaling.md).
    preload_nodes: Annotated[tuple[str, ...], NoDecode] = ()
    # Expired sessions are deleted every session_sweep_seconds by one worker at a time, in
    # batches of session_sweep_batch rows (services/sweep.py; 0 s: never).
    session_sweep_seconds: float = Field(default=60.0, ge=0)
    session_sweep_batch: int = Field(default=1000, ge=1, le=100_000)
    # "text": gunicorn's and the app's plain lines; "json": one JSON object per line for all.
    log_format: Literal["text", "json"] = "text"
    # The admin page's accuracy evaluation (services/evaluation_jobs.py) runs in a process of
    # its own, bounded by these: wall-clock seconds, held-out sequences, the node's patterns
    # (each evaluation builds its own index of them) and the process's data memory in MiB
    # (0: no limit).
    eval_max_seconds: int = Field(default=600, ge=1)
    eval_max_sample: int = Field(default=2000, ge=1)
    eval_max_patterns: int = Field(default=500_000, ge=1)
    eval_max_memory_mb: int = Field(default=4096, ge=0)
    testing: bool = False
    # Security (README "Security"). Bounds on what one session may hold, checked before
    # anything is stored: longer lifetimes (422), more STM events (422), a larger STM (413),
    # longer symbols (422; PostgreSQL's B-tree entries hold ~2.7 kB, shared with the node id).
    max_session_ttl: int = Field(default=30 * 24 * 3600, ge=1, le=2 ** 31 - 1)
    max_stm_events: int = Field(default=10_000, ge=1)
    max_stm_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    max_symbol_bytes: int = Field(default=1024, ge=1, le=2048)
    # Browser origins allowed to call the API (flask-cors), comma-separated; none by default.
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    # "key[:node_prefix[:ro]]" entries, comma-separated (web/auth.py); keys made on the admin
    # page live in the database.
    api_keys: str | None = None
    # Serve the API without keys on a non-loopback address (gunicorn refuses otherwise).
    allow_anonymous: bool = False
    # Secure admin cookies: "auto" (when the request came over HTTPS), "1" always, "0" never.
    cookie_secure: Literal["auto", "1", "0"] = "auto"
    # How many reverse proxies stand in front (their X-Forwarded-For/-Proto/-Host are trusted).
    proxy_count: int = Field(default=0, ge=0, le=10)
    # Admin sign-in attempts per client address, and from everyone together (web/limiter.py).
    admin_login_limit: str = "10 per minute"
    admin_login_global_limit: str = "60 per minute"
    audit_retention_days: int = Field(default=90, ge=1)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value):
        if isinstance(value, str):
            value = [part for part in value.split(",")]
        origins = tuple(str(o).strip().rstrip("/") for o in value if str(o).strip())
        for origin in origins:
            if origin != "*" and not origin.startswith(("http://", "https://")):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com (or *)")
        return origins

    @field_validator("preload_nodes", mode="before")
    @classmethod
    def _preload(cls, value):
        if isinstance(value, str):
            value = value.split(",")
        nodes = tuple(dict.fromkeys(str(n).strip() for n in value if str(n).strip()))
        if "*" in nodes and len(nodes) > 1:
            raise ValueError("'*' (every node) cannot be combined with node ids")
        for node in nodes:
            if len(node) > 256 or any(ord(c) < 32 for c in node):
                raise ValueError(f"{node[:40]!r} is not a node id (at most 256 printable characters)")
        return nodes

    @field_validator("cookie_secure", mode="before")
    @classmethod
    def _secure(cls, value):
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, str):
            text = value.strip().lower()
            return {"true": "1", "yes": "1", "on": "1", "false": "0", "no": "0", "off": "0"}.get(text, text)
        return value

    @field_validator("admin_login_limit", "admin_login_global_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        from limits import parse_many
        try:
            parse_many(value)
        except ValueError:
            raise ValueError("must be a rate like '10 per minute' or '100/hour'") from None
        return value

    @field_validator("api_keys")
    @classmethod
    def _keys(cls, value):
        from kato_web.services.api_keys import parse_env_keys
        parse_env_keys(value)  # ValueError with what is wrong
        return value

    @model_validator(mode="after")
    def _ttl_within_bound(self):
        if self.session_ttl > self.max_session_ttl:
            raise ValueError("KATO_SESSION_TTL must not exceed KATO_MAX_SESSION_TTL")
        return self

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower_format(cls, value):
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url

        try:
            backend = make_url(value).get_backend_name()
        except Exception:
            raise ValueError("must be an SQLAlchemy URL (sqlite:///path or "
                             "postgresql+psycopg://user:password@host:port/database)") from None
        if backend not in ("sqlite", "postgresql"):
            raise ValueError("must be a sqlite:// or postgresql+psycopg:// URL")
        return value

    @classmethod
    def from_env(cls) -> "Config":
        """Read and check every KATO_* variable; ConfigError (one line) on the first bad one."""
        server = ServerSettings.from_env()
        overrides: dict = {"server": server, "session_defaults": session_defaults_from_env()}
        # The pool follows the thread count unless set explicitly.
        for name in ("db_pool_size", "db_max_overflow"):
            if _env(env_name(name)) is None:
                overrides[name] = server.threads
        return _from_env(cls, _EnvConfig, **overrides)


# KATO_* variables read elsewhere than Config: the test suite's, CI's and one gunicorn.conf.py
# passes to its workers.
OTHER_VARIABLES = frozenset({"KATO_TEST_DATABASE_URL", "KATO_CI_POSTGRES_URL", "KATO_UPDATE_SCREENSHOTS",
                             "KATO_SERVER_STARTED_AT"})


# Variables whose values are secrets: an error line names them without their value.
SECRET_VARIABLES = frozenset({"KATO_API_KEYS", "KATO_ADMIN_PASSWORD", "KATO_SECRET_KEY"})


def unknown_variables(environ=None) -> list[str]:
    """KATO_* variables that no setting reads (a typo, or a setting this version does not have)."""
    environ = os.environ if environ is None else environ
    known = {env_name(f) for f in Config.model_fields if f not in ("server", "session_defaults")}
    known |= {env_name(f) for f in ServerSettings.model_fields}
    known |= {env_name(k) for k in SESSION_DEFAULTS}
    return sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known | OTHER_VARIABLES)


def _from_env(model: type[_Settings], reader: type[BaseSettings], **overrides) -> _Settings:
    try:
        values = reader(**overrides)
    except ValidationError as err:
        raise ConfigError(_one_line(err)) from None
    return model.model_validate({name: getattr(values, name) for name in model.model_fields})


def _one_line(err: ValidationError) -> str:
    """The first error as `KATO_NAME='value' is not allowed: what is allowed`."""
    first = err.errors()[0]
    name = env_name(str(first["loc"][0])) if first.get("loc") else ENV_PREFIX + "?"
    raw = os.environ.get(name, first.get("input"))
    if name in SECRET_VARIABLES:
        raw = "<hidden>"  # the line goes to logs: never print a key or password
    message = first["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    message = message[0].lower() + message[1:] if message else message
    if first.get("type") == "bool_parsing":
        message = "must be a boolean (1/0, true/false, yes/no, on/off)"
    elif first.get("type") == "literal_error":
        message = "must be " + message.removeprefix("input should be ")
    elif message.startswith("input should be "):
        message = "must be " + message.removeprefix("input should be ")
    return f"{name}={raw!r} is not allowed: {message}"


_ENV = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore",
                          case_sensitive=False, validate_default=True)


class _EnvServer(BaseSettings, ServerSettings):
    model_config = _ENV


class _EnvConfig(BaseSettings, Config):
    # `server` and `session_defaults` are read by their own readers and passed in.
    model_config = _ENV
