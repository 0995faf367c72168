"""The back office's admin site: Django's admin in the django-unfold theme, plus a second factor for staff (django-otp)."""

from __future__ import annotations

import json
from functools import update_wrapper

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticToken
from unfold import fields as unfold_fields
from unfold.sites import UnfoldAdminSite
from unfold.widgets import BASE_INPUT_CLASSES

from config.errors import ServiceError
from config.health import readiness_report_sync

from . import admin_nav, two_factor
from .permissions import capability_required
from .roles import SIGNED_IN


def json_without_inline_styles(data, encoder=None):
    """A read-only JSON field as indented text. The theme colours it with pygments' inline style attributes, which the
    Content-Security-Policy refuses (style-src has no 'unsafe-inline'), so it is shown plain."""
    return format_html(
        '<pre class="whitespace-pre-wrap break-words">{}</pre>', json.dumps(data, sort_keys=True, indent=4, cls=encoder)
    )


unfold_fields.prettify_json = json_without_inline_styles


class StaffLoginForm(two_factor.StaffLoginForm):
    """The two-factor login form with the theme's input style."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("username", "password", "otp_token"):
            self.fields[name].widget.attrs["class"] = " ".join(BASE_INPUT_CLASSES)


class BackOfficeAdminSite(UnfoldAdminSite):
    login_form = StaffLoginForm
    index_title = "Dashboard"  # the home page is the bonus dashboard (bonuses.admin.dashboard)
    login_template = "admin/login_two_factor.html"

    def has_permission(self, request) -> bool:
        return super().has_permission(request) and two_factor.second_factor_satisfied(request)

    def admin_view(self, view, cacheable=False):
        guarded = super().admin_view(view, cacheable)

        def inner(request, *args, **kwargs):
            # Staff who must enrol reach nothing else until they have, but may log out (which Django's own
            # wrapper would turn into a redirect to the index for anyone without the admin's permission).
            if two_factor.enrolment_required(request):
                if request.path == reverse("admin:logout", current_app=self.name):
                    return csrf_protect(view)(request, *args, **kwargs)
                return self._to_enrolment()
            return guarded(request, *args, **kwargs)

        return update_wrapper(inner, guarded)

    def login(self, request, extra_context=None):
        if request.method == "GET" and two_factor.enrolment_required(request):
            return self._to_enrolment()
        return super().login(request, extra_context)

    def get_app_list(self, request, app_label=None):
        apps = super().get_app_list(request, app_label)
        if admin_nav.hides_stripe(request):
            apps = [app for app in apps if app["app_label"] != admin_nav.STRIPE_APP]
        return apps

    def app_index(self, request, app_label, extra_context=None):
        if app_label == admin_nav.STRIPE_APP and admin_nav.hides_stripe(request):
            raise Http404("No such application.")
        return super().app_index(request, app_label, extra_context)

    def search(self, request, extra_context=None):
        # The theme's search over app and model names: it lists only what get_app_list lets this person see.
        return super().search(request, extra_context)

    def get_urls(self):
        # Not behind admin_view: staff who must enrol do not have the admin's permission yet.
        enrol = path("two-factor/", never_cache(csrf_protect(self.two_factor_view)), name="two_factor")
        health = path("system-health/", self.admin_view(self.system_health_view), name="system-health")
        return [enrol, health, *super().get_urls()]

    @capability_required("system.health")
    def system_health_view(self, request):
        """The readiness report (config/health.py) on one page: each dependency, its status and what it said."""
        report = readiness_report_sync()
        context = {**self.each_context(request), "title": "System health", "report": report}
        return TemplateResponse(request, "admin/system_health.html", context, status=200)

    def _to_enrolment(self):
        return HttpResponseRedirect(reverse("admin:two_factor", current_app=self.name))

    def two_factor_view(self, request):
        """Turn on two-factor login (scan a QR code, confirm a code), or renew backup codes once it is on."""
        # Every staff member, about themselves (checked below: the admin's own permission may not be held yet).
        user = request.user
        if not (user.is_authenticated and user.is_active and user.is_staff):
            return redirect_to_login(request.get_full_path(), reverse("admin:login", current_app=self.name))
        enrolled = two_factor.has_confirmed_device(request)
        if enrolled and not two_factor.is_verified(user):
            # Already on: the code is asked at the admin login first; only then can backup codes be renewed.
            return redirect_to_login(request.get_full_path(), reverse("admin:login", current_app=self.name))
        context = {**self.each_context(request), "title": "Two-factor login", "enrolled": enrolled}
        if enrolled:
            if request.method == "POST" and request.POST.get("action") == "renew-backup-codes":
                context["backup_codes"] = two_factor.backup_codes_renew(user=user)
            context["backup_codes_left"] = StaticToken.objects.filter(device__user=user).count()
            return TemplateResponse(request, "admin/two_factor.html", context)

        if request.method == "POST":
            try:
                device_id = int(request.POST.get("device", ""))
            except ValueError:
                device_id = 0
            try:
                device, codes = two_factor.totp_enrolment_confirm(
                    user=user, device_id=device_id, token=request.POST.get("otp_token", "")
                )
            except ServiceError as exc:
                context["error"] = exc.message
            else:
                otp_login(request, device)  # this session counts as verified: no second login needed
                request._has_confirmed_otp_device = True
                context = {**self.each_context(request), "title": "Two-factor login", "enrolled": True}
                context.update(just_enrolled=True, backup_codes=codes, backup_codes_left=len(codes))
                return TemplateResponse(request, "admin/two_factor.html", context)
        device = two_factor.totp_enrolment_start(user=user)
        context.update(
            device=device,
            qr_svg=two_factor.qr_code_svg(device),
            secret=two_factor.secret_for_typing(device),
            required=two_factor.enrolment_required(request),
        )
        return TemplateResponse(request, "admin/two_factor.html", context)


BackOfficeAdminSite.two_factor_view.capability = SIGNED_IN  # read by the permission test
BackOfficeAdminSite.search.capability = SIGNED_IN
