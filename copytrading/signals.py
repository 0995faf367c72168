"""What copy trading announces to the apps above it: the documented port (docs/architecture.md).

Sent after the transaction that stored the change commits (``transaction.on_commit``) with
``sender=CopiedPosition`` and the keyword arguments named below; receivers are called with ``send_robust``.
"""

from __future__ import annotations

from django.dispatch import Signal

#: A copy command was refused or failed on the slave. kwargs: ``copy`` (copytrading.models.CopiedPosition),
#: ``retcode`` (int or None), ``reason`` (str, human readable).
copy_command_failed = Signal()
