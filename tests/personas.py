"""Personas every permission test asks about: the owner, an outsider, and one user per staff role."""

from __future__ import annotations

import itertools

import factory
import pytest
from django.contrib.auth.models import Group
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.choices import Role
from accounts.models import User

PASSWORD = "correct-horse-battery-staple"
_logins = itertools.count(700001)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    display_name = factory.Faker("name")
    # Confirmed, as everyone past sign-up is; the email-confirmation tests make unconfirmed people themselves.
    email_verified_at = factory.LazyFunction(timezone.now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def roles(self, create, extracted, **kwargs):
        if extracted is None and not self.is_staff and not self.is_superuser:
            extracted = [Role.TRADER]  # as sign-up does: every person who signs up is a trader
        if extracted:
            self.groups.add(*Group.objects.filter(name__in=extracted))
        self.save()


def staff_user(role: str) -> User:
    return UserFactory(is_staff=True, roles=[role])


def next_login() -> int:
    return next(_logins)


def api_client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def owner(db) -> User:
    return UserFactory(roles=[Role.TRADER])


@pytest.fixture
def outsider(db) -> User:
    return UserFactory(roles=[Role.TRADER])


@pytest.fixture
def super_admin(db) -> User:
    return staff_user(Role.SUPER_ADMIN)


@pytest.fixture
def campaign_manager(db) -> User:
    return staff_user(Role.CAMPAIGN_MANAGER)


@pytest.fixture
def support_agent(db) -> User:
    return staff_user(Role.SUPPORT_AGENT)


@pytest.fixture
def read_only(db) -> User:
    return staff_user(Role.READ_ONLY)


@pytest.fixture
def owner_client(owner) -> APIClient:
    return api_client_for(owner)


@pytest.fixture
def outsider_client(outsider) -> APIClient:
    return api_client_for(outsider)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


SIM_SERVER = "MetaSim-Demo"
SIM_PASSWORD = "mt5-Secret-pass-42"


@pytest.fixture
def sim_login(db) -> int:
    """A fresh account on the simulated MT5 server (password SIM_PASSWORD), with some history."""
    from decimal import Decimal

    from mt5bridge.simulated import create_account, generate_history

    login = next_login()
    create_account(
        login=login,
        password=SIM_PASSWORD,
        server=SIM_SERVER,
        balance=Decimal("10000"),
        name="Test Trader",
        country="DE",
        lead_source="test",
    )
    generate_history(login, days=20, trades_per_day=5, seed=login)
    return login


@pytest.fixture
def owned_account(owner, sim_login):
    """A trading account of ``owner``, connected through the service like a user would."""
    from accounts.services import trading_account_create

    return trading_account_create(
        owner=owner, login=sim_login, password=SIM_PASSWORD, server=SIM_SERVER, name="Main", sync_now=False
    )
