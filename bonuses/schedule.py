"""Periodic jobs of the bonuses app (installed by `manage.py setup_periodic_tasks`)."""

PERIODIC_JOBS = [
    {
        "name": "Bonus monitor fallback cycle",
        "task": "bonuses.tasks.monitor_fallback_cycle",
        "every": 5,
        "queue": "default",
    },
    {"name": "Expire bonuses", "task": "bonuses.tasks.expire_bonuses", "every": 3600, "queue": "default"},
    {
        "name": "Resume pending bonus operations",
        "task": "bonuses.tasks.resume_operations",
        "every": 60,
        "queue": "default",
    },
    {
        # Nightly at 02:30 (CELERY_TIMEZONE); "every" is the period, for schedulers without a crontab.
        "name": "Reconcile bonus operations with MT5 credit deals",
        "task": "bonuses.tasks.reconcile_nightly",
        "every": 86400,
        "crontab": {"minute": "30", "hour": "2"},
        "queue": "default",
    },
]
