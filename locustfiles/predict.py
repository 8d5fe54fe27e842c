"""Predictions only, against a node pre-loaded with 10,000 patterns.

Each user observes two events drawn from the loader's vocabulary (so its STM matches
real patterns), then asks for predictions over and over.
"""
from locust import task

from locustfiles.common import KatoUser


class PredictUser(KatoUser):
    def on_start(self):
        super().on_start()
        for _ in range(2):
            self.observe()

    @task
    def predictions_task(self):
        self.predictions()
