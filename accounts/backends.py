"""Django's model backend, with the person's roles read in the same statement as the person.

Every signed-in request loads its user (``AuthenticationMiddleware``) and then asks the role matrix
(`accounts.permissions.roles_of`), which read the user's groups in a second round trip. Here the user comes
with its role names (`accounts.permissions.with_roles`): one statement. Roles are read on every request as
before, so a role taken away is gone on the person's next request.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend as DjangoModelBackend

from .permissions import take_roles, with_roles


class ModelBackend(DjangoModelBackend):
    def get_user(self, user_id):
        model = get_user_model()
        try:
            user = with_roles(model._default_manager.all()).get(pk=user_id)
        except model.DoesNotExist:
            return None
        return take_roles(user) if self.user_can_authenticate(user) else None
