"""Single-pattern learning: observe two events, then learn them, over and over (KATO's way of
learning one pattern at a time; the issue-16 target runs it with 4 users).

Every learn stores a pattern of 2 events (2-4 symbols), mostly new ones, into a node of its
own ("learn"), away from the pre-loaded one. A task is three requests; the learned patterns
per second are the learn requests per second.
"""
import os

from locust import task

from locustfiles.common import KatoUser


class SingleLearnUser(KatoUser):
    node_id = os.environ.get("KATO_LEARN_NODE", "learn")

    @task
    def observe_and_learn_task(self):
        self.observe()
        self.observe()
        self.learn()
