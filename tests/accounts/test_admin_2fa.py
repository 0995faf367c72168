"""Two-factor login for staff at the admin (django-otp): enrolment, the code at login, backup codes, the setting."""

from __future__ import annotations

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.personas import PASSWORD

pytestmark = pytest.mark.django_db

LOGIN, ENROL, INDEX = "/admin/login/", "/admin/two-factor/", "/admin/"
USERS = "/admin/accounts/user/"


def code_of(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift):06d}"


def admin_login(client: Client, user, otp_token: str | None = None):
    data = {"username": user.email, "password": PASSWORD, "next": INDEX}
    if otp_token is not None:
        data["otp_token"] = otp_token
    return client.post(LOGIN, data)


def enrolled(user) -> TOTPDevice:
    return TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True)


def test_staff_without_a_device_still_log_in_with_the_password_alone(super_admin, client):
    response = admin_login(client, super_admin)
    assert response.status_code == 302 and response.url == INDEX
    assert client.get(INDEX).status_code == 200


def test_enrolment_creates_a_device_shows_a_qr_code_and_a_valid_code_turns_it_on(super_admin, client, settings):
    # django-otp's back-off after one wrong code is this many seconds: long enough that a slow machine cannot let
    # it pass between the wrong code and the next (at its default of 1 s it did, on a loaded machine).
    settings.OTP_TOTP_THROTTLE_FACTOR = 60
    admin_login(client, super_admin)
    page = client.get(ENROL)
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=super_admin)
    assert not device.confirmed
    assert client.get(ENROL).context["device"].pk == device.pk  # reloading keeps the scanned key valid

    wrong = client.post(ENROL, {"device": device.pk, "otp_token": "000000" if code_of(device) != "000000" else "1"})
    assert wrong.status_code == 200 and wrong.context["error"]
    device.refresh_from_db()
    assert not device.confirmed
    throttled = client.post(ENROL, {"device": device.pk, "otp_token": code_of(device)})
    assert "Too many wrong codes" in throttled.context["error"]  # django-otp's back-off after a wrong code
    TOTPDevice.objects.filter(pk=device.pk).update(throttling_failure_timestamp=None)  # the back-off has passed

    done = client.post(ENROL, {"device": device.pk, "otp_token": code_of(device)})
    assert done.status_code == 200 and done.context["just_enrolled"]
    device.refresh_from_db()
    assert device.confirmed
    codes = done.context["backup_codes"]
    assert len(codes) == 10 and set(codes) == set(StaticToken.objects.values_list("token", flat=True))
    assert client.get(USERS).status_code == 200  # this session is verified: no second login needed


def test_with_a_device_the_admin_login_refuses_a_missing_or_wrong_code(super_admin, client):
    device = enrolled(super_admin)
    for token in (None, "", "123", f"{(int(code_of(device)) + 1) % 1_000_000:06d}"):
        response = admin_login(client, super_admin, token)
        assert response.status_code == 200, token  # the form again, with an error
        assert response.context["form"].errors
        assert client.get(INDEX).status_code == 302  # not signed in to the admin


def test_with_a_device_a_valid_code_opens_the_admin(super_admin, client):
    device = enrolled(super_admin)
    response = admin_login(client, super_admin, code_of(device))
    assert response.status_code == 302 and response.url == INDEX
    assert client.get(USERS).status_code == 200


def test_the_code_is_required_even_when_the_setting_is_off(super_admin, client, settings):
    settings.OTP_REQUIRED_FOR_STAFF = False
    enrolled(super_admin)
    assert admin_login(client, super_admin).status_code == 200
    assert client.get(INDEX).status_code == 302


def test_a_backup_code_opens_the_admin_once(super_admin, client):
    from accounts.two_factor import backup_codes_renew

    enrolled(super_admin)
    code = backup_codes_renew(user=super_admin)[0]
    assert admin_login(client, super_admin, code).status_code == 302
    assert client.get(INDEX).status_code == 200
    other = Client()
    assert admin_login(other, super_admin, code).status_code == 200  # used up
    assert other.get(INDEX).status_code == 302


def test_a_session_from_the_web_apps_login_does_not_skip_the_code(super_admin, client):
    """Staff who enrolled and sign in through /login/ with the password only are asked for the code there, and have
    no session the admin would take without it."""
    enrolled(super_admin)
    page = client.post("/login/", {"username": super_admin.email, "password": PASSWORD})
    assert page.status_code == 200 and "_auth_user_id" not in client.session  # the code is asked for
    response = client.get(USERS)
    assert response.status_code == 302 and response.url.startswith(LOGIN)
    assert client.get(ENROL).url.startswith(LOGIN)  # nor can they add a device without the first one's code


def test_mandatory_setting_sends_an_unenrolled_staff_user_to_enrolment(super_admin, client, settings):
    settings.OTP_REQUIRED_FOR_STAFF = True
    response = admin_login(client, super_admin)
    assert response.status_code == 302
    for path in (INDEX, USERS, LOGIN, "/admin/password_change/"):
        response = client.get(path)
        assert response.status_code == 302 and response.url == ENROL, path
    page = client.get(ENROL)
    assert page.status_code == 200 and page.context["required"]

    device = TOTPDevice.objects.get(user=super_admin, confirmed=False)
    client.post(ENROL, {"device": device.pk, "otp_token": code_of(device)})
    assert client.get(USERS).status_code == 200


def test_during_forced_enrolment_staff_can_still_log_out(super_admin, client, settings):
    settings.OTP_REQUIRED_FOR_STAFF = True
    admin_login(client, super_admin)
    response = client.post("/admin/logout/")
    assert not (response.status_code == 302 and response.url == ENROL)
    assert "_auth_user_id" not in client.session


def test_only_signed_in_staff_reach_the_enrolment_page(owner, client):
    assert client.get(ENROL).url.startswith(LOGIN)
    client.force_login(owner, backend="accounts.backends.ModelBackend")
    assert client.get(ENROL).url.startswith(LOGIN)
    assert not TOTPDevice.objects.exists()


def test_enrolled_staff_can_renew_backup_codes(super_admin, client):
    device = enrolled(super_admin)
    admin_login(client, super_admin, code_of(device))
    first = client.post(ENROL, {"action": "renew-backup-codes"}).context["backup_codes"]
    second = client.post(ENROL, {"action": "renew-backup-codes"}).context["backup_codes"]
    assert len(second) == 10 and not set(first) & set(second)
    assert set(StaticToken.objects.values_list("token", flat=True)) == set(second)


def test_the_traders_web_login_is_unchanged_when_staff_must_enrol(owner, client, settings):
    settings.OTP_REQUIRED_FOR_STAFF = True
    response = client.post("/login/", {"username": owner.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/dashboard/").status_code == 200


def test_the_device_admin_never_shows_a_key_a_qr_code_or_backup_codes(super_admin, client):
    """Whoever may view devices in the admin must not be able to copy someone's second factor."""
    from accounts.two_factor import backup_codes_renew

    device = enrolled(super_admin)
    codes = backup_codes_renew(user=super_admin)
    admin_login(client, super_admin, code_of(device))
    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in page
    assert client.get(f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/").status_code == 403
    static = super_admin.staticdevice_set.get()
    page = client.get(f"/admin/otp_static/staticdevice/{static.pk}/change/").content.decode()
    assert not any(code in page for code in codes)
