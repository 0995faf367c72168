from django.apps import AppConfig


class Mt5BridgeConfig(AppConfig):
    name = "mt5bridge"
    verbose_name = "MT5 bridge"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from accounts.models import TradingAccount
        from billing.selectors import plan_changed

        from .ea.services import ea_gates_forget

        def forget(owner_id) -> None:
            # Now (this process stops trusting them) and after commit (a beat in between may have re-cached the
            # answer from the rows as they were).
            ea_gates_forget(owner_id)
            transaction.on_commit(lambda: ea_gates_forget(owner_id))

        def on_plan_changed(user_id=None, **_kwargs) -> None:
            forget(user_id)

        def on_account_saved(instance, **_kwargs) -> None:
            # Whether an account is within its owner's plan depends on the owner's other accounts too.
            forget(instance.owner_id)

        plan_changed.connect(on_plan_changed, dispatch_uid="mt5bridge.ea_gates.plan")
        post_save.connect(on_account_saved, sender=TradingAccount, dispatch_uid="mt5bridge.ea_gates.account_save")
        post_delete.connect(on_account_saved, sender=TradingAccount, dispatch_uid="mt5bridge.ea_gates.account_delete")
