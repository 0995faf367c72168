"""Every gate: features and limits in the service layer, the REST API, the sync schedule and the EA protocol."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from config.errors import NotAllowed
from entitlements import gates
from entitlements.selectors import forget_user_plan, plan_for_user

from .conftest import make_account, on_plan

# The cheapest seeded plan that unlocks each feature.
UNLOCKS = {
    "analytics_advanced": "pro",
    "copy_trading": "basic",
    "web_terminal": "pro",
    "templates": "basic",
    "rules": "pro",
    "systeme_sync": "enterprise",
    "api_access": "pro",
}


def test_local_mode_puts_every_user_on_the_default_plan(owner, local_mode, settings):
    assert plan_for_user(owner).slug == "pro"
    assert all(gates.has_feature(owner, f) for f in ("web_terminal", "rules", "api_access"))
    settings.BILLING_DEFAULT_PLAN = "free"
    forget_user_plan(owner.pk)
    assert plan_for_user(owner).slug == "free"
    assert not gates.has_feature(owner, "copy_trading")


def test_with_stripe_a_user_without_subscription_is_on_free(owner, stripe_mode):
    assert plan_for_user(owner).slug == "free"


@pytest.mark.parametrize(("feature", "plan"), sorted(UNLOCKS.items()))
def test_require_feature_on_free_names_the_cheapest_plan_that_unlocks_it(owner, stripe_mode, feature, plan):
    assert not gates.has_feature(owner, feature)
    with pytest.raises(NotAllowed) as refused:
        gates.require_feature(owner, feature)
    assert refused.value.status_code == 403
    assert refused.value.details["required_plan"] == plan
    assert plan.capitalize() in refused.value.message
    on_plan(owner, plan)
    gates.require_feature(owner, feature)  # unlocked now


@pytest.mark.parametrize(
    ("limit", "current"), [("accounts", 1), ("history_days", 30), ("copy_links", 0), ("slaves_per_master", 0)]
)
def test_require_limit_at_the_free_limit_names_basic(owner, stripe_mode, limit, current):
    if current:
        gates.require_limit(owner, limit, current - 1)  # below the limit passes
    with pytest.raises(NotAllowed) as refused:
        gates.require_limit(owner, limit, current)
    assert refused.value.code == "plan_limit"
    assert refused.value.details == {
        "limit": limit,
        "allowed": current,
        "current": current,
        "current_plan": "free",
        "required_plan": "basic",
        "upgrade_url": "/billing/pricing/",
    }
    assert "Basic" in refused.value.message


def test_copy_engine_limit_on_basic_names_pro_and_enterprise_has_no_limit(owner, stripe_mode):
    on_plan(owner, "basic")
    gates.require_limit(owner, "copy_links", 1)
    with pytest.raises(NotAllowed) as refused:
        gates.require_limit(owner, "copy_links", 2)
    assert refused.value.details["required_plan"] == "pro"
    on_plan(owner, "enterprise")
    gates.require_limit(owner, "copy_links", 10_000)


def test_unknown_feature_or_limit_is_a_programming_error(owner):
    with pytest.raises(ValueError):
        gates.has_feature(owner, "teleport")
    with pytest.raises(ValueError):
        gates.require_limit(owner, "planets", 1)


# --- REST API ---------------------------------------------------------------------------------


def test_adding_a_second_account_on_free_is_refused_with_403_naming_basic(owned_account, owner_client, stripe_mode):
    response = owner_client.post(
        reverse("account-list"), {"login": 123456, "password": "whatever-pass", "server": "MetaSim-Demo"}, format="json"
    )
    assert response.status_code == 403, response.json()
    error = response.json()["error"]
    assert error["code"] == "plan_limit"
    assert error["details"]["required_plan"] == "basic"
    assert "Basic" in error["message"]


def test_reactivating_an_account_over_the_limit_is_refused_in_the_api(owner, owner_client, stripe_mode):
    make_account(owner)
    paused = make_account(owner, active=False)
    response = owner_client.patch(reverse("account-detail", args=[paused.pk]), {"is_active": True}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["details"]["required_plan"] == "basic"


class _FeatureView(APIView):
    capabilities = "accounts.view"  # a trader's own data, so the plan gate is what answers
    feature = ""

    def get(self, request):
        gates.require_feature(request.user, self.feature)
        from rest_framework.response import Response

        return Response({"ok": True})


@pytest.mark.parametrize(("feature", "plan"), sorted(UNLOCKS.items()))
def test_a_gated_api_view_answers_403_json_naming_the_plan(owner, stripe_mode, feature, plan):
    view = type("View", (_FeatureView,), {"feature": feature}).as_view()
    request = APIRequestFactory().get("/api/gated")
    force_authenticate(request, owner)
    response = view(request)
    assert response.status_code == 403
    assert response.data["error"]["code"] == "plan_required"
    assert response.data["error"]["details"]["required_plan"] == plan
    on_plan(owner, "enterprise")
    request = APIRequestFactory().get("/api/gated")
    force_authenticate(request, owner)
    assert view(request).status_code == 200


# --- Sync schedule ----------------------------------------------------------------------------


def test_free_history_is_thirty_days_and_pro_has_no_window(owner, stripe_mode):
    assert gates.history_start(owner) is not None
    on_plan(owner, "pro")
    assert gates.history_start(owner) is None  # tests/entitlements/test_plan_features.py: every plan, every read


# --- EA protocol ------------------------------------------------------------------------------


def test_ea_access_in_local_mode_on_pro_is_granted(owner, local_mode):
    assert gates.ea_access(make_account(owner)) == (True, "")


def test_ea_access_on_a_plan_without_copy_trading_is_refused_naming_basic(owner, stripe_mode):
    allowed, reason = gates.ea_access(make_account(owner))
    assert not allowed
    assert reason.startswith("plan_required") and "Basic" in reason


def test_ea_access_for_an_account_over_the_limit_is_refused_and_the_oldest_keep_access(owner, stripe_mode):
    on_plan(owner, "basic")  # 3 accounts
    accounts = [make_account(owner) for _ in range(3)]
    # A fourth active account appears behind the service's back (e.g. before a downgrade was applied).
    extra = make_account(owner)
    assert [gates.ea_access(a)[0] for a in accounts] == [True, True, True]
    allowed, reason = gates.ea_access(extra)
    assert not allowed
    assert reason.startswith("plan_limit") and "Pro" in reason


def test_ea_access_for_a_paused_account_is_refused(owner, local_mode):
    allowed, reason = gates.ea_access(make_account(owner, active=False))
    assert not allowed and reason.startswith("account_paused")


def test_ea_access_many_answers_as_ea_access_does_for_each_account(owner, stripe_mode, django_user_model):
    """The EA edge refreshes cached answers in bulk: the same answer per account, in a few queries."""
    on_plan(owner, "basic")  # 3 accounts
    mixed = [make_account(owner) for _ in range(4)] + [make_account(owner, active=False)]
    free_owner = django_user_model.objects.create_user(email="free-owner@example.com", password="x" * 12)
    mixed.append(make_account(free_owner))  # no copy trading on Free
    expected = [gates.ea_access(a) for a in mixed]
    assert [allowed for allowed, _ in expected] == [True, True, True, False, False, False]
    assert gates.ea_access_many(mixed) == expected
