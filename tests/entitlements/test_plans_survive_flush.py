"""The four plans exist after a flush (what every transactional test and `manage.py flush` leave behind)."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from entitlements.models import Plan


@pytest.mark.django_db(transaction=True)
def test_a_flush_leaves_the_four_plans_in_place():
    call_command("flush", interactive=False, verbosity=0)
    assert sorted(Plan.objects.values_list("slug", flat=True)) == sorted(["free", "basic", "pro", "enterprise"])
