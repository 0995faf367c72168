"""Periodic jobs of entitlements (declared here, installed by `manage.py setup_periodic_tasks`)."""

PERIODIC_JOBS = [
    {
        "name": "Re-apply billing plans (grace periods, staff choices ending)",  # installed rows are found by this name: keep it
        "task": "entitlements.tasks.enforce_plans",
        "every": 3600,
        "queue": "default",
    },
]
