"""API routes of the copytrading app (mounted under /api/)."""

from django.urls import path, re_path

from .api import guards, links, orders, rules, signals

urlpatterns = [
    path("copy/links", links.CopyLinkListView.as_view(), name="copy-links"),
    re_path(r"^copy/links/(?P<pk>[0-9]{1,18})$", links.CopyLinkDetailView.as_view(), name="copy-link"),
    re_path(r"^copy/links/(?P<pk>[0-9]{1,18})/resume$", guards.CopyLinkResumeView.as_view(), name="copy-link-resume"),
    re_path(
        r"^copy/links/(?P<pk>[0-9]{1,18})/slippage$", guards.CopyLinkSlippageView.as_view(), name="copy-link-slippage"
    ),
    path("copy/slippage", guards.CopySlippageListView.as_view(), name="copy-slippage"),
    path("copy/link-stops", guards.LinkStopListView.as_view(), name="copy-link-stops"),
    path("copy/events", links.CopyEventListView.as_view(), name="copy-events"),
    path("copy/positions", links.CopiedPositionListView.as_view(), name="copy-positions"),
    path("copy/rules", rules.RuleListView.as_view(), name="copy-rules"),
    re_path(r"^copy/rules/(?P<pk>[0-9]{1,18})$", rules.RuleDetailView.as_view(), name="copy-rule"),
    path("copy/rule-hits", rules.RuleHitListView.as_view(), name="copy-rule-hits"),
    path("copy/accounts/<uuid:account_id>/mode", rules.CopyModeView.as_view(), name="copy-mode"),
    path("copy/templates", orders.TemplateListView.as_view(), name="copy-templates"),
    re_path(r"^copy/templates/(?P<pk>[0-9]{1,18})$", orders.TemplateDetailView.as_view(), name="copy-template"),
    re_path(
        r"^copy/templates/(?P<pk>[0-9]{1,18})/place$", orders.TemplatePlaceView.as_view(), name="copy-template-place"
    ),
    path("copy/terminal/orders", orders.TerminalOrderView.as_view(), name="copy-terminal-order"),
    path("copy/terminal/commands", orders.TerminalCommandListView.as_view(), name="copy-terminal-commands"),
    path("signals", signals.SignalListView.as_view(), name="signals"),
    re_path(r"^signals/(?P<pk>[0-9]{1,18})$", signals.SignalDetailView.as_view(), name="signal"),
    re_path(r"^signals/(?P<pk>[0-9]{1,18})/followers$", signals.SignalFollowersView.as_view(), name="signal-followers"),
    re_path(r"^signals/(?P<pk>[0-9]{1,18})/subscribe$", signals.SignalSubscribeView.as_view(), name="signal-subscribe"),
    path("signal-subscriptions", signals.SubscriptionListView.as_view(), name="signal-subscriptions"),
    re_path(
        r"^signal-subscriptions/(?P<pk>[0-9]{1,18})$",
        signals.SubscriptionDetailView.as_view(),
        name="signal-subscription",
    ),
    re_path(
        r"^signal-subscriptions/(?P<pk>[0-9]{1,18})/stop$",
        signals.SubscriptionStopView.as_view(),
        name="signal-subscription-stop",
    ),
]
