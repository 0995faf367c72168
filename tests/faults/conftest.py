"""Fixtures of the fault suite: a system of separate processes around a throwaway PostgreSQL and Redis."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import connections

from tests.faults.harness import System


def source_db_url() -> str:
    """The migrated test database of this pytest run: its schema and data are copied into the throwaway one."""
    db = connections["default"].settings_dict  # NAME is the test database's once pytest-django set it up
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def fault_system_factory(django_db_setup, django_db_blocker, tmp_path_factory):
    """Start a System; every one started is stopped (its processes killed) when the module's tests end."""
    if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        pytest.skip("the fault suite copies a PostgreSQL test database")
    missing = System.available()
    if missing:
        pytest.skip(f"fault suite: {missing}")
    stack = []

    def start(env: dict[str, str] | None = None) -> System:
        context = System.start(source_db_url=source_db_url(), tmp=tmp_path_factory.mktemp("faults"), env=env)
        system = context.__enter__()
        stack.append(context)
        return system

    try:
        yield start
    finally:
        for context in reversed(stack):
            context.__exit__(None, None, None)
