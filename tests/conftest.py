"""Shared fixtures: one migrated throw-away database per run, emptied before each test."""
from __future__ import annotations

import pytest

from kato_web import create_app
from kato_web.config import Config
from kato_web.store.migrate import upgrade
from tests.support import throwaway_database, wipe


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Compile the prediction kernels once per checkout, as `make run` does on its first start:
    numba writes them to its on-disk cache, and every gunicorn the tests start then loads them in
    about a second instead of compiling before it binds its port."""
    from kato_web.engine import index as engine_index

    engine_index.warm_up()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    with throwaway_database(tmp_path_factory.mktemp("db")) as url:
        upgrade(url)
        yield url


class FakeClock:
    """A controllable clock for expiry tests."""

    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_config(database_url: str, **overrides) -> Config:
    cfg = Config(database_url=database_url, testing=True, secret_key="test-secret")
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


@pytest.fixture
def app(database_url):
    application = create_app(make_config(database_url))
    kato = application.extensions["kato"]
    wipe(kato.db.engine)
    yield application
    kato.db.dispose()


@pytest.fixture
def kato(app):
    return app.extensions["kato"]


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def clock(kato):
    fake = FakeClock()
    kato.clock = fake
    return fake


@pytest.fixture
def new_session(client):
    def make(node_id: str = "node-a", **body):
        resp = client.post("/sessions", json={"node_id": node_id, **body})
        assert resp.status_code == 200, resp.get_json()
        return resp.get_json()["session_id"]
    return make
