"""Observe only: each user streams events of 1–3 Zipf-drawn symbols into its own session.

STM grows for the whole run (KATO keeps at most 1,000 events), as with a client that
observes and never learns.
"""
from locust import task

from locustfiles.common import KatoUser


class ObserveUser(KatoUser):
    @task
    def observe_task(self):
        self.observe()
