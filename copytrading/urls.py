"""API routes of the copytrading app (mounted under /api/)."""

from django.urls import path, re_path

from . import api

urlpatterns = [
    path("copy/links", api.CopyLinkListView.as_view(), name="copy-links"),
    re_path(r"^copy/links/(?P<pk>[0-9]{1,18})$", api.CopyLinkDetailView.as_view(), name="copy-link"),
    path("copy/events", api.CopyEventListView.as_view(), name="copy-events"),
    path("copy/positions", api.CopiedPositionListView.as_view(), name="copy-positions"),
    path("copy/rules", api.RuleListView.as_view(), name="copy-rules"),
    re_path(r"^copy/rules/(?P<pk>[0-9]{1,18})$", api.RuleDetailView.as_view(), name="copy-rule"),
    path("copy/rule-hits", api.RuleHitListView.as_view(), name="copy-rule-hits"),
    path("copy/accounts/<uuid:account_id>/mode", api.CopyModeView.as_view(), name="copy-mode"),
    path("copy/templates", api.TemplateListView.as_view(), name="copy-templates"),
    re_path(r"^copy/templates/(?P<pk>[0-9]{1,18})$", api.TemplateDetailView.as_view(), name="copy-template"),
    re_path(r"^copy/templates/(?P<pk>[0-9]{1,18})/place$", api.TemplatePlaceView.as_view(), name="copy-template-place"),
    path("copy/terminal/orders", api.TerminalOrderView.as_view(), name="copy-terminal-order"),
    path("copy/terminal/commands", api.TerminalCommandListView.as_view(), name="copy-terminal-commands"),
]
