"""The service context: what every use case needs (database, settings, clock)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

from kato_web.config import Config
from kato_web.store.db import Database


@dataclass
class Context:
    config: Config
    db: Database
    clock: Callable[[], float] = time.time
    started_at: float = field(default_factory=time.time)
    # Per-process caches (rebuilt from the database at any time), e.g. the knowledge index.
    local: dict = field(default_factory=dict)
