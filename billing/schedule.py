"""Periodic jobs of billing (declared here, installed by `manage.py setup_periodic_tasks`)."""

PERIODIC_JOBS = [
    {
        "name": "Re-apply billing plans (grace periods, staff choices ending)",
        "task": "billing.tasks.enforce_plans",
        "every": 3600,
        "queue": "default",
    },
]
