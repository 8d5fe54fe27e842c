"""Batch learning: observe-sequence with learn_after_each, 10 observations per request.

Each observation is one event of 2–3 symbols, so every request learns 10 patterns
(one per observation) into a node of its own ("batch"), away from the pre-loaded one.
"""
import os

from locust import task

from locustfiles.common import VOCABULARY, KatoUser

BATCH = int(os.environ.get("KATO_LOAD_BATCH", "10"))


class BatchLearnUser(KatoUser):
    node_id = os.environ.get("KATO_BATCH_NODE", "batch")

    @task
    def observe_sequence_task(self):
        observations = [{"strings": VOCABULARY.event(self.rng, self.rng.randint(2, 3))} for _ in range(BATCH)]
        self.client.post(f"{self.base}/observe-sequence", name="/sessions/[id]/observe-sequence",
                         json={"observations": observations, "learn_after_each": True})
