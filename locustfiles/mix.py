"""KATO's stress mix: 60% observe, 20% predictions, 10% learn, 5% STM reads, 5% clear-stm.

Run against a node pre-loaded with 10,000 patterns (make load SCENARIO=mix). A learn
on an empty STM would be a 400, so a user whose STM is empty observes once first:
every learn stores a pattern, and observes end up ~2 points above 60%.
"""
from locust import task

from locustfiles.common import KatoUser


class StressMixUser(KatoUser):
    @task(60)
    def observe_task(self):
        self.observe()

    @task(20)
    def predictions_task(self):
        self.predictions()

    @task(10)
    def learn_task(self):
        if self.stm_events == 0:
            self.observe()
        self.learn()

    @task(5)
    def stm_task(self):
        self.stm()

    @task(5)
    def clear_stm_task(self):
        self.clear_stm()
