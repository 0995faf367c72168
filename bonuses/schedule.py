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
]
