"""Periodic jobs of copy trading (declared here, installed by `manage.py setup_periodic_tasks`)."""

PERIODIC_JOBS = [
    {
        "name": "Signal fees: settle finished months and charge them",  # installed rows are found by this name: keep it
        "task": "copytrading.tasks.signal_fees",
        "every": 86400,
        "crontab": {"minute": "15", "hour": "2"},
        "queue": "default",
    },
]
