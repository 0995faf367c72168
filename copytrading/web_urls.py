"""Web UI routes of the copytrading app (server-rendered pages)."""

from django.urls import path, re_path

from . import web, web_guards, web_preview, web_signals

urlpatterns = [
    path("copy/", web.links, name="copy-web-links"),
    path("copy/links/preview/", web_preview.link_preview, name="copy-web-link-preview"),
    re_path(r"^copy/links/(?P<pk>[0-9]{1,18})/$", web.link_action, name="copy-web-link-action"),
    re_path(r"^copy/links/(?P<pk>[0-9]{1,18})/fills/$", web_guards.link_fills, name="copy-web-link-fills"),
    path("copy/accounts/<uuid:account_id>/mode/", web.account_mode, name="copy-web-mode"),
    path("copy/history/", web.history, name="copy-web-history"),
    path("copy/rules/", web.rules, name="copy-web-rules"),
    re_path(r"^copy/rules/(?P<pk>[0-9]{1,18})/delete/$", web.rule_delete, name="copy-web-rule-delete"),
    path("copy/templates/", web.templates, name="copy-web-templates"),
    re_path(r"^copy/templates/(?P<pk>[0-9]{1,18})/place/$", web.template_place, name="copy-web-template-place"),
    path("copy/terminal/", web.terminal, name="copy-web-terminal"),
    path("copy/terminal/commands/", web.terminal_commands, name="copy-web-terminal-commands"),
    path("copy/signals/", web_signals.signal_list, name="copy-web-signals"),
    re_path(r"^copy/signals/(?P<pk>[0-9]{1,18})/$", web_signals.signal_page, name="copy-web-signal"),
    re_path(r"^copy/signals/(?P<pk>[0-9]{1,18})/follow/$", web_signals.signal_follow, name="copy-web-signal-follow"),
    re_path(r"^copy/signals/(?P<pk>[0-9]{1,18})/listing/$", web_signals.signal_listing, name="copy-web-signal-listing"),
    path("copy/signals/mine/", web_signals.signals_mine, name="copy-web-signals-mine"),
    path("copy/following/", web_signals.following, name="copy-web-following"),
    re_path(r"^copy/following/(?P<pk>[0-9]{1,18})/stop/$", web_signals.follow_stop, name="copy-web-following-stop"),
]
