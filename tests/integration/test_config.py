"""Configuration: every KATO_* variable typed and checked at start (issue 14, README Configuration)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from kato_web.config import SESSION_DEFAULTS, Config, ConfigError, ServerSettings
from tests.support import ROOT, free_port


@pytest.fixture
def env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("KATO_") and name != "KATO_TEST_DATABASE_URL":
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults_and_typed_values(env):
    env.setenv("KATO_SESSION_TTL", "60")
    env.setenv("KATO_ACCESS_LOG", "yes")
    env.setenv("KATO_RECALL_THRESHOLD", "0.3")
    env.setenv("KATO_FILTER_PIPELINE", "length, jaccard")
    env.setenv("KATO_SORT_SYMBOLS", "false")
    env.setenv("KATO_LOG_LEVEL", "WARNING")
    env.setenv("KATO_GZIP_LEVEL", "")  # empty means unset
    config = Config.from_env()
    assert config.session_ttl == 60 and config.server.access_log is True
    assert config.server.log_level == "warning" and config.gzip_level == 1
    assert config.session_defaults["recall_threshold"] == 0.3
    assert config.session_defaults["filter_pipeline"] == ["length", "jaccard"]
    assert config.session_defaults["sort_symbols"] is False
    assert config.session_defaults["persistence"] == SESSION_DEFAULTS["persistence"]
    assert isinstance(config.server, ServerSettings)


def test_preload_nodes_are_a_list_of_node_ids(env):
    # scaling.md "Memory per instance": the master loads these before forking.
    assert Config.from_env().preload_nodes == ()
    env.setenv("KATO_PRELOAD_NODES", " big , small,big,, ")
    assert Config.from_env().preload_nodes == ("big", "small")
    env.setenv("KATO_PRELOAD_NODES", "*")
    assert Config.from_env().preload_nodes == ("*",)


def test_direct_construction_reads_no_environment(env):
    env.setenv("KATO_SESSION_TTL", "60")
    env.setenv("KATO_WORKERS", "9")
    config = Config(database_url="sqlite:///x.sqlite3", testing=True)
    assert config.session_ttl == 3600 and config.server.workers != 9
    config.session_ttl = 5  # tests adjust a built config
    assert config.session_ttl == 5


@pytest.mark.parametrize("name, value, allowed", [
    ("KATO_RECALL_THRESHOLD", "5", "between 0.0 and 1.0"),
    ("KATO_WORKERS", "many", "valid integer"),
    ("KATO_THREADS", "0", "greater than or equal to 1"),
    ("KATO_SESSION_AUTO_EXTEND", "perhaps", "boolean"),
    ("KATO_LOG_LEVEL", "loud", "'debug', 'info', 'warning', 'error' or 'critical'"),
    ("KATO_DATABASE_URL", "mysql://db/kato", "sqlite:// or postgresql+psycopg://"),
    ("KATO_STM_MODE", "SIDEWAYS", "CLEAR, ROLLING"),
    ("KATO_FILTER_PIPELINE", "length,sieve", "filter names"),
    ("KATO_MAX_PREDICTIONS", "0", "between 1 and 10000"),
    ("KATO_GZIP_LEVEL", "12", "less than or equal to 9"),
    ("KATO_PRELOAD_NODES", "*,big", "cannot be combined"),
    ("KATO_PRELOAD_NODES", "a\tb", "not a node id"),
])
def test_bad_value_is_one_line_naming_variable_value_and_rule(env, name, value, allowed):
    env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        Config.from_env()
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{name}={value!r} is not allowed: ")
    assert allowed in message


def _clean_env(**extra) -> dict:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("KATO_")}
    environment.update(extra)
    return environment


def test_bad_setting_stops_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "kato_web", "check"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120,
                          env=_clean_env(KATO_RECALL_THRESHOLD="5",
                                         KATO_DATABASE_URL=f"sqlite:///{tmp_path}/k.sqlite3"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "kato-web: configuration error: KATO_RECALL_THRESHOLD='5' is not allowed: "
        "must be a number between 0.0 and 1.0"]


@pytest.mark.e2e
def test_bad_setting_stops_gunicorn_before_it_serves(tmp_path):
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "wsgi:app"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env=_clean_env(KATO_WORKERS="-3", KATO_BIND=f"127.0.0.1:{port}",
                       KATO_DATABASE_URL=f"sqlite:///{tmp_path}/k.sqlite3"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "kato-web: configuration error: KATO_WORKERS='-3' is not allowed: "
        "must be greater than or equal to 1"]


def test_unknown_kato_variables_are_named(env):
    from kato_web.config import unknown_variables

    env.setenv("KATO_WORKRES", "3")  # a typo of KATO_WORKERS
    env.setenv("KATO_WORKERS", "3")
    env.setenv("KATO_RECALL_THRESHOLD", "0.2")
    assert unknown_variables() == ["KATO_WORKRES"]
