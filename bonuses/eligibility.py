"""Whether a campaign may give an account a bonus: every failed check at once, each overridable or not."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from decimal import Decimal

from mt5bridge.groups import group_matches

from .choices import CampaignStatus

# The seed's table: the first three can never be overridden; the rest can, by staff, on purpose.
NOT_OVERRIDABLE = ("campaign_status", "campaign_ended", "account_not_found")
OVERRIDABLE = (
    "group_mismatch",
    "country_mismatch",
    "deposit_below_min",
    "deposit_above_max",
    "duplicate_bonus",
    "max_concurrent",
)


@dataclass(frozen=True)
class Failure:
    check: str
    message: str

    @property
    def overridable(self) -> bool:
        return self.check in OVERRIDABLE

    def as_dict(self) -> dict:
        return {**asdict(self), "overridable": self.overridable}


@dataclass(frozen=True)
class AccountFacts:
    """What MT5 and our records say about the account (None: the login does not exist on MT5)."""

    group: str
    country: str
    previous_bonuses: int  # of this campaign, any status except failed
    open_bonuses: int  # pending or active, any campaign


def check_eligibility(
    *,
    status: str,
    starts_at: datetime,
    ends_at: datetime | None,
    target_groups: list[str],
    target_countries: list[str],
    min_deposit: Decimal,
    max_deposit: Decimal | None,
    one_per_account: bool,
    max_concurrent: int,
    account: AccountFacts | None,
    deposit: Decimal | None,
    now: datetime,
) -> list[Failure]:
    """All the reasons the account cannot get the campaign's bonus now (empty: eligible).

    ``deposit`` is None for triggers that carry no deposit (registration, promo code without
    one, a manual grant of a fixed amount): the deposit range is not checked then.
    """
    failures: list[Failure] = []
    if status != CampaignStatus.ACTIVE:
        failures.append(Failure("campaign_status", f"The campaign is {status}, not active."))
    if (ends_at is not None and now >= ends_at) or status in (CampaignStatus.ENDED, CampaignStatus.ARCHIVED):
        failures.append(Failure("campaign_ended", "The campaign has ended."))
    elif now < starts_at:
        # Not started yet is the same business fact for the caller: the campaign is not running.
        failures.append(Failure("campaign_status", "The campaign has not started yet."))
    if account is None:
        failures.append(Failure("account_not_found", "The MT5 account does not exist."))
        return failures
    # MT5 group masks (mt5bridge.groups): the list is one comma list, read in its order; empty targets every group.
    if target_groups and not group_matches(account.group, target_groups):
        failures.append(Failure("group_mismatch", f"Group {account.group!r} is not targeted by the campaign."))
    countries = {c.strip().lower() for c in target_countries}
    if countries and account.country.strip().lower() not in countries:
        failures.append(Failure("country_mismatch", f"Country {account.country!r} is not targeted by the campaign."))
    if deposit is not None:
        if min_deposit and deposit < min_deposit:
            failures.append(Failure("deposit_below_min", f"Deposit {deposit} is below the minimum {min_deposit}."))
        if max_deposit is not None and deposit > max_deposit:
            failures.append(Failure("deposit_above_max", f"Deposit {deposit} is above the maximum {max_deposit}."))
    if one_per_account and account.previous_bonuses > 0:
        failures.append(Failure("duplicate_bonus", "The account already received this campaign's bonus."))
    if max_concurrent and account.open_bonuses >= max_concurrent:
        failures.append(
            Failure("max_concurrent", f"The account already holds {account.open_bonuses} active bonus(es).")
        )
    return failures


def blocking(failures: list[Failure], *, override: bool) -> list[Failure]:
    """The failures that stop an assignment: all of them, or only the non-overridable ones when overriding."""
    return [f for f in failures if not (override and f.overridable)]
