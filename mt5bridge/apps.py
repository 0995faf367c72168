from django.apps import AppConfig


class Mt5BridgeConfig(AppConfig):
    name = "mt5bridge"
    verbose_name = "MT5 bridge"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save, pre_delete

        from accounts.models import TradingAccount
        from entitlements.selectors import plan_changed

        from .ea.services import ea_gates_forget, ea_tokens_forget_for_accounts

        def forget(owner_id) -> None:
            # Now (this process stops trusting them) and after commit (a beat in between may have re-cached the
            # answer from the rows as they were).
            ea_gates_forget(owner_id)
            transaction.on_commit(lambda: ea_gates_forget(owner_id))

        def on_plan_changed(user_id=None, **_kwargs) -> None:
            forget(user_id)
            if user_id is not None:
                # A plan change pauses or resumes accounts with a queryset update (no post_save): their EA tokens
                # must answer from the new rows on the next request.
                ids = TradingAccount.objects.filter(owner_id=user_id).values_list("pk", flat=True)
                ea_tokens_forget_for_accounts(list(ids))

        def on_account_saved(instance, update_fields=None, **_kwargs) -> None:
            # Whether an account is within its owner's plan depends on the owner's other accounts too.
            forget(instance.owner_id)
            # An inactive account's token is refused at once (docs/ea-protocol.md), not when its cache entry
            # expires; an account just switched back on is let in at once too.
            if not instance.is_active or (update_fields is not None and "is_active" in update_fields):
                ea_tokens_forget_for_accounts([instance.pk])

        def on_account_deleting(instance, **_kwargs) -> None:
            # Before the delete: it cascades to the tokens, whose hashes are needed to find the cache entries.
            ea_tokens_forget_for_accounts([instance.pk])

        # accounts connects and syncs accounts through this bridge without importing it (accounts/ports.py).
        from accounts.ports import provide_mt5

        from .account_access import GatewayAccountAccess

        provide_mt5(GatewayAccountAccess())
        # ... and reads when each account's EA last beat, for "stale since" (accounts/freshness.py).
        from accounts.ports import provide_ea_last_beats

        from .beats import ea_last_beats

        provide_ea_last_beats(ea_last_beats)

        plan_changed.connect(on_plan_changed, dispatch_uid="mt5bridge.ea_gates.plan")
        post_save.connect(on_account_saved, sender=TradingAccount, dispatch_uid="mt5bridge.ea_gates.account_save")
        post_delete.connect(on_account_saved, sender=TradingAccount, dispatch_uid="mt5bridge.ea_gates.account_delete")
        pre_delete.connect(
            on_account_deleting, sender=TradingAccount, dispatch_uid="mt5bridge.ea_tokens.account_delete"
        )
