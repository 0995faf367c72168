"""Periodic jobs of the MT5 bridge (declared here, installed by `manage.py setup_periodic_tasks`)."""

PERIODIC_JOBS = [
    {
        "name": "Sync accounts that are due",
        "task": "mt5bridge.tasks.sync_due_accounts",
        "every": 60,
        "queue": "default",
    },
    {
        "name": "Expire commands past their expiry",
        "task": "mt5bridge.tasks.commands_expire_sweep",
        "every": 60,
        "queue": "default",
    },
]
