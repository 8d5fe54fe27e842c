"""Extension instances, created once and bound to the app in create_app()."""
from __future__ import annotations

from flask_caching import Cache

cache = Cache()


def cache_config(cache_url: str | None, testing: bool = False) -> dict:
    """Return flask-caching settings: Redis when KATO_CACHE_URL is redis://…, else in-process."""
    if cache_url and cache_url.startswith(("redis://", "rediss://", "unix://")):
        return {"CACHE_TYPE": "RedisCache", "CACHE_REDIS_URL": cache_url,
                "CACHE_KEY_PREFIX": "kato_web:", "CACHE_DEFAULT_TIMEOUT": 300}
    return {"CACHE_TYPE": "SimpleCache", "CACHE_DEFAULT_TIMEOUT": 300, "CACHE_THRESHOLD": 10000}
