"""The Celery application; tasks are discovered in each app's tasks.py."""

import os

from celery import Celery
from celery.signals import beat_init
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mt5backoffice")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Riding out broker outages (docs/reliability.md): connect with retries from start-up on and forever after a loss;
# a task running when the connection dropped is cancelled and, acked late (settings), delivered again.
app.conf.broker_connection_retry_on_startup = True
app.conf.broker_connection_max_retries = None
app.conf.worker_cancel_long_running_tasks_on_connection_loss = True
if app.conf.broker_url and app.conf.broker_url.startswith(("redis://", "rediss://")):
    app.conf.broker_transport_options = {
        "visibility_timeout": settings.BROKER_VISIBILITY_TIMEOUT,
        # Each worker looks for such tasks every 10 s (kombu's default looks every 100 s).
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 1,
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
        "health_check_interval": 10,
    }


@beat_init.connect
def _stamp_beat_dispatches(sender=None, **_kwargs):
    """The beat process records each dispatch, for the readiness check (config/health.py)."""
    from config.health import beat_watch  # noqa: PLC0415  (Django is set up once beat starts)

    beat_watch()
