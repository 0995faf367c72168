"""Template tags of the bonus admin pages: the back office's links this person may use."""

from __future__ import annotations

from django import template

from accounts.admin_nav import back_office_links

register = template.Library()


@register.simple_tag(takes_context=True)
def bonus_nav(context) -> list[dict]:
    """The bonus back office's pages (accounts.admin_nav.BACK_OFFICE) the viewer's role may use, in order."""
    request = context.get("request")
    return back_office_links(request) if request is not None else []
