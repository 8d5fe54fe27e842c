"""The framework's ceiling: GET /health in the same conditions as the other scenarios."""
from locust import task

from locustfiles.common import KatoUser


class HealthUser(KatoUser):
    def on_start(self):
        self.session_id = None  # /health needs no session

    @task
    def health_task(self):
        self.client.get("/health", name="/health")
