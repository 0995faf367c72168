"""Django's admin app, pointed at the back office's own admin site (config.admin)."""

from django.contrib.admin.apps import AdminConfig


class BackOfficeAdminConfig(AdminConfig):
    # Every app's admin.register() lands on this site, so the second-factor rule covers the whole admin.
    default_site = "config.admin.BackOfficeAdminSite"
