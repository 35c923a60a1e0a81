"""The Celery application: Redis broker, JSON only, late acks, one message at a time."""

from __future__ import annotations

import os

from celery import Celery
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nps_saas.settings")

QUEUES = ("default", "sends", "alerts", "rollups")

app = Celery("nps_saas", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.task_queues = tuple(Queue(name) for name in QUEUES)
app.autodiscover_tasks()
