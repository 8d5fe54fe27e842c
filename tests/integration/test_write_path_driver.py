"""The write path's statements sent straight to the driver (repositories.lock_session_for_write,
update_session_written) must read and store exactly what the SQLAlchemy Core forms do."""
from __future__ import annotations

import threading

import pytest
from sqlalchemy import exc as sa_exc

from kato_web.engine.types import JSONList
from kato_web.store import repositories as repo


def _rows(kato, sid):
    with kato.db.transaction() as conn:
        return repo.get_session(conn, sid)


def test_lock_for_write_reads_what_touch_session_reads(kato, new_session):
    sid = new_session(metadata={"who": "é ü", "n": [1, 2.5, None]}, config={"max_predictions": 3})
    with kato.db.transaction() as conn:
        repo.update_session(conn, sid, state={"stm": [["a", "ß"]], "emotives": [{"joy": 0.25}],
                                              "metadata": [{"k": {"deep": [1]}}], "time": 3, "percept": {}})
    for settings in ({}, {"persistence": 9, "filter_pipeline": ["length"], "recall_threshold": 0.5,
                          "sort_symbols": False, "extra": {"x": "ü"}}):
        with kato.db.transaction() as conn:
            for key, value in settings.items():
                repo.save_setting(conn, key, value, 0.0)
        with kato.db.transaction() as conn:
            core = repo.touch_session(conn, sid, 1.0, slide=False, lock=True, with_settings=True)
        with kato.db.transaction() as conn:
            driver = repo.lock_session_for_write(conn, sid, 1.0)
        assert driver == core
        assert [type(v) for v in driver[0].values()] == [type(v) for v in core[0].values()]
        assert driver[1] == settings
    with kato.db.transaction() as conn:
        assert repo.lock_session_for_write(conn, "session-missing", 1.0) == (None, {})
        expires = repo.get_session(conn, sid)["expires_at"]
        assert repo.lock_session_for_write(conn, sid, expires) == (None, {})  # expired at `now`


def test_update_written_stores_what_update_session_stores(kato, clock, new_session):
    one, two = new_session(), new_session()  # the same expiry (a fixed clock)
    values = [
        {"state": {"stm": [["a", "b"], ["ü"]], "time": 2, "percept": {"strings": ["ü"]}},
         "prediction_input": {"config": {"x": 1}, "stm": [["a"]]}, "predictions": None},
        {"state": {"stm": [], "time": 0}, "prediction_input": None, "predictions": []},
        {"predictions": JSONList(b'[{"name":"p","similarity":0.5}]', 1)},
        {"state": {"big": 2**70, "f": 0.1, "nested": [[[["x"]]]]}},
        {},
    ]
    for slide_at in (None, 1.0, 1e12):
        for update in values:
            if not update and slide_at is None:
                continue  # nothing to write (update_session needs a column; _save never asks)
            with kato.db.transaction() as conn:
                repo.update_session(conn, one, slide_at=slide_at, **update)
                repo.update_session_written(conn, two, slide_at=slide_at, **update)
            a, b = _rows(kato, one), _rows(kato, two)
            for row in (a, b):
                row.pop("session_id")
                row.pop("created_at")
            assert a == b, (slide_at, update)
    assert _rows(kato, one)["expires_at"] > 1e12  # slid forward, never back (1.0 changed nothing)
    assert _rows(kato, one)["access_count"] == _rows(kato, two)["access_count"] == 10


def test_update_written_falls_back_for_other_columns(kato, new_session):
    sid = new_session()
    with kato.db.transaction() as conn:
        repo.update_session_written(conn, sid, slide_at=None, config={"max_predictions": 4})
    assert _rows(kato, sid)["config"] == {"max_predictions": 4}


def test_concurrent_observes_on_one_session_keep_every_event_in_order(app, kato, new_session):
    """Each thread's events arrive in its own order, and none is lost (row lock held from read to write)."""
    sid = new_session()
    threads, per_thread = 4, 15

    def work(t):
        client = app.test_client()
        for i in range(per_thread):
            answer = client.post(f"/sessions/{sid}/observe", json={"strings": [f"t{t}-{i:02d}"]})
            assert answer.status_code == 200, answer.get_json()

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stm = app.test_client().get(f"/sessions/{sid}/stm").get_json()["stm"]
    assert len(stm) == threads * per_thread
    for t in range(threads):
        mine = [event[0] for event in stm if event[0].startswith(f"t{t}-")]
        assert mine == [f"t{t}-{i:02d}" for i in range(per_thread)]
    state = _rows(kato, sid)["state"]
    assert state["time"] == threads * per_thread and _rows(kato, sid)["access_count"] >= threads * per_thread


def test_driver_errors_are_raised_as_sqlalchemys(kato, new_session, monkeypatch):
    """A driver error is wrapped as for any statement (a database that went away answers 503)."""
    sid = new_session()
    dialect = kato.db.engine.dialect.name
    monkeypatch.setitem(repo._LOCK_FOR_WRITE, dialect, "SELECT * FROM no_such_table WHERE 1 = 0")
    with pytest.raises(sa_exc.DBAPIError) as raised:
        with kato.db.transaction() as conn:
            repo.lock_session_for_write(conn, sid, 1.0)
    assert isinstance(raised.value.orig, kato.db.engine.dialect.loaded_dbapi.Error)
    with kato.db.transaction() as conn:  # the pool hands out a working connection afterwards
        assert repo.get_session(conn, sid)["session_id"] == sid


def test_a_lost_connection_on_the_driver_path_is_a_disconnect_for_sqlalchemy(client, kato, new_session):
    """PostgreSQL restarted under the pool: the driver's error comes out as SQLAlchemy's
    OperationalError (answered 503, nothing stored), the connection is invalidated, and the
    next observe is served."""
    if kato.db.sqlite:
        pytest.skip("PostgreSQL connections only")
    from sqlalchemy import create_engine, text

    sid = new_session()
    assert client.post(f"/sessions/{sid}/observe", json={"strings": ["a"]}).status_code == 200
    killer = create_engine(kato.db.engine.url)
    try:
        with pytest.raises(sa_exc.OperationalError) as raised:
            with kato.db.transaction() as conn:
                pid = conn.connection.dbapi_connection.info.backend_pid
                with killer.connect() as other:
                    other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
                try:
                    repo.lock_session_for_write(conn, sid, 1.0)
                except BaseException as err:  # as the statement raised it (not the rollback's)
                    caught = err
                    raise
    finally:
        killer.dispose()
    assert isinstance(caught, sa_exc.OperationalError) and caught.connection_invalidated
    assert isinstance(raised.value, sa_exc.OperationalError)
    assert client.post(f"/sessions/{sid}/observe", json={"strings": ["c"]}).status_code == 200
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["a"], ["c"]]
