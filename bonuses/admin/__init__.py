"""The bonus back office in the Django admin: campaigns, the bonus monitor and its pages, records.

Django's admin autodiscovery imports ``bonuses.admin``; importing the modules here is what
registers their ModelAdmins.
"""

from . import bonuses, campaigns, controls, records  # noqa: F401
from .reconciliation import ReconciliationMismatchAdmin, ReconciliationRunAdmin  # noqa: F401
