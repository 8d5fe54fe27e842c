"""API keys as the environment gives them (KATO_API_KEYS), and what a key allows.

A leaf module (standard library only): the settings check (config.py) and the request check
(web/auth.py) both read keys with it.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._~+/=-]{16,200}$")


def hash_key(key: str) -> str:
    """Keys are long and random: a plain SHA-256 is safe to store and look up by."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is calling: an API key (with its limits) or nobody in particular."""

    label: str                      # for the audit log: "anonymous", "key kato_ab12cd34", "env key …"
    node_prefix: str | None = None  # None: every node
    read_only: bool = False
    authenticated: bool = False


ANONYMOUS = Principal("anonymous")


def parse_env_keys(raw: str | None) -> dict[str, Principal]:
    """Parse KATO_API_KEYS: comma-separated ``key[:node_prefix[:ro]]``; return {sha256: Principal}."""
    keys: dict[str, Principal] = {}
    for entry in (raw or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        key, _, rest = entry.partition(":")
        prefix, _, mode = rest.partition(":")
        if not KEY_PATTERN.match(key):
            raise ValueError("every key must be 16-200 characters of A-Z a-z 0-9 . _ ~ + / = -"
                             " (entries are key[:node_prefix[:ro]], comma-separated)")
        if mode not in ("", "ro", "rw"):
            raise ValueError(f"the third part of an entry is 'ro' or 'rw', not {mode!r}")
        keys[hash_key(key)] = Principal(label="env key " + key[:8] + "…", node_prefix=prefix or None,
                                        read_only=mode == "ro", authenticated=True)
    return keys
