"""A task the node-failure test queues on the Celery workers (``celery worker -I tests.faults.probe_tasks``).

Each run counts itself in Redis (hash ``faults:probe``, field = the task's number), so the test sees which tasks
ran, and how often, after a worker was killed in the middle of one.
"""

from __future__ import annotations

import os
import time

import redis
from celery import shared_task


@shared_task(name="faults.probe", acks_late=True, reject_on_worker_lost=True)
def probe(number: int, seconds: float = 0.5) -> None:
    time.sleep(seconds)
    redis.Redis.from_url(os.environ["REDIS_URL"]).hincrby("faults:probe", str(number), 1)
