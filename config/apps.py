"""Django's admin app, pointed at the back office's own admin site (accounts.admin_site)."""

from django.contrib.admin.apps import AdminConfig


class BackOfficeAdminConfig(AdminConfig):
    # Every app's admin.register() lands on this site, so the second-factor rule covers the whole admin.
    default_site = "accounts.admin_site.BackOfficeAdminSite"
