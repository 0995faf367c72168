"""Periodic jobs of the integrations app (installed by `manage.py setup_periodic_tasks`)."""

from django.conf import settings

PERIODIC_JOBS = [
    {
        "name": "Systeme.io: sync contacts and evaluate rules",
        "task": "integrations.tasks.systeme_sync_and_evaluate",
        "every": settings.SYSTEME_SYNC_INTERVAL_MINUTES * 60,
        "queue": "default",
    },
    {
        "name": "Systeme.io: evaluate automation rules",
        "task": "integrations.tasks.systeme_evaluate_rules",
        "every": settings.SYSTEME_RULES_INTERVAL_MINUTES * 60,
        "queue": "default",
    },
    {
        "name": "Outbound webhooks: retry due deliveries",
        "task": "integrations.tasks.deliver_due_webhooks",
        "every": 30,
        "queue": "default",
    },
]
