"""A client written the way KATO's own example client is described (kato-3.10.md §5), and
nothing else: KATO's users bring code like this, and it must run unchanged against kato-web.

One client instance = one session, created in the constructor; the settings that differ from
KATO's defaults are sent afterwards as a wrapped config update; urljoin'ed URLs; urllib3
retries on 502/503/504 for GET/POST/DELETE/PUT; node-level routes take `?node_id=`; a context
manager that deletes the session.
"""
from __future__ import annotations

from urllib.parse import quote, urljoin

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

DEFAULTS = {"max_pattern_length": 0, "persistence": 5, "recall_threshold": 0.1, "stm_mode": "CLEAR",
            "indexer_type": "VI", "max_predictions": 100, "sort_symbols": True, "process_predictions": True}


class KATOClient:
    def __init__(self, base_url="http://localhost:8000", node_id=None, timeout=120, metadata=None,
                 ttl_seconds=None, max_pattern_length=0, persistence=5, recall_threshold=0.1, stm_mode="CLEAR",
                 indexer_type="VI", max_predictions=100, sort_symbols=True, process_predictions=True,
                 auto_recreate_session=True, max_session_recreate_attempts=3):
        if not node_id:
            raise ValueError("node_id is required")
        self.base_url = base_url
        self.node_id = node_id
        self.timeout = timeout
        self.auto_recreate_session = auto_recreate_session
        self.max_session_recreate_attempts = max_session_recreate_attempts
        self.http = requests.Session()
        retry = Retry(total=3, backoff_factor=0.5, status_forcelist=[502, 503, 504],
                      allowed_methods=["GET", "POST", "DELETE", "PUT"])
        self.http.mount("http://", HTTPAdapter(max_retries=retry))
        self.http.mount("https://", HTTPAdapter(max_retries=retry))
        self.config = {"max_pattern_length": max_pattern_length, "persistence": persistence,
                       "recall_threshold": recall_threshold, "stm_mode": stm_mode, "indexer_type": indexer_type,
                       "max_predictions": max_predictions, "sort_symbols": sort_symbols,
                       "process_predictions": process_predictions}
        self.metadata = metadata or {}
        self.ttl_seconds = ttl_seconds
        self.session_id = None
        self._create_session()

    # -- plumbing -----------------------------------------------------------------------------

    def _url(self, path):
        return urljoin(self.base_url, path)

    def _request(self, method, path, **kwargs):
        resp = self.http.request(method, self._url(path), timeout=self.timeout, **kwargs)
        resp.raise_for_status()
        return resp.json()

    def _create_session(self):
        body = {"node_id": self.node_id, "metadata": self.metadata}
        if self.ttl_seconds is not None:
            body["ttl_seconds"] = self.ttl_seconds
        self.session_id = self._request("POST", "/sessions", json=body)["session_id"]
        changed = {k: v for k, v in self.config.items() if DEFAULTS[k] != v}
        if changed:
            self.update_session_config(changed)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- session ------------------------------------------------------------------------------

    def get_root_info(self):
        return self._request("GET", "/")

    def get_session_info(self):
        return self._request("GET", f"/sessions/{self.session_id}")

    def get_session_config(self):
        return self.get_session_info()["session_config"]

    def extend_session(self, ttl_seconds=3600):
        return self._request("POST", f"/sessions/{self.session_id}/extend", params={"ttl_seconds": ttl_seconds})

    def update_session_config(self, config):
        return self._request("POST", f"/sessions/{self.session_id}/config", json={"config": config})

    def close(self):
        if self.session_id:
            self._request("DELETE", f"/sessions/{self.session_id}")
            self.session_id = None

    # -- KATO operations ------------------------------------------------------------------------

    def observe(self, strings=None, vectors=None, emotives=None, metadata=None):
        body = {"strings": strings or [], "vectors": vectors or [], "emotives": emotives or {},
                "metadata": metadata or {}}
        return self._request("POST", f"/sessions/{self.session_id}/observe", json=body)

    def observe_sequence(self, observations, learn_after_each=False, learn_at_end=False, clear_stm_between=False):
        body = {"observations": observations, "learn_after_each": learn_after_each, "learn_at_end": learn_at_end,
                "clear_stm_between": clear_stm_between}
        return self._request("POST", f"/sessions/{self.session_id}/observe-sequence", json=body)

    def get_stm(self):
        return self._request("GET", f"/sessions/{self.session_id}/stm")

    def learn(self):
        return self._request("POST", f"/sessions/{self.session_id}/learn", json={})

    def clear_stm(self):
        return self._request("POST", f"/sessions/{self.session_id}/clear-stm", json={})

    def finalize_training(self):
        return self._request("POST", f"/sessions/{self.session_id}/finalize-training", json={})

    def get_predictions(self):
        return self._request("GET", f"/sessions/{self.session_id}/predictions")

    def get_pattern(self, pattern_id):
        return self._request("GET", "/pattern/" + quote(pattern_id, safe=""), params={"node_id": self.node_id})

    def get_percept_data(self):
        return self._request("GET", "/percept-data", params={"node_id": self.node_id})

    def get_cognition_data(self):
        return self._request("GET", "/cognition-data", params={"node_id": self.node_id})

    # -- monitoring -----------------------------------------------------------------------------

    def get_cache_stats(self):
        return self._request("GET", "/cache/stats")

    def invalidate_cache(self):
        return self._request("POST", "/cache/invalidate")

    def get_distributed_stm_stats(self):
        return self._request("GET", "/distributed-stm/stats")

    def get_metrics(self):
        return self._request("GET", "/metrics")

    def get_stats(self, minutes=10):
        return self._request("GET", "/stats", params={"minutes": minutes})

    def get_metric_history(self, metric_name, minutes=10):
        return self._request("GET", f"/metrics/{metric_name}", params={"minutes": minutes})

    def get_connection_pools_status(self):
        return self._request("GET", "/connection-pools")

    def health_check(self):
        return self._request("GET", "/health")

    def get_status(self):
        return self._request("GET", "/status")
