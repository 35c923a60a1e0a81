"""Messages of Django and django-allauth that our pages show (sign-up, log-in and password
errors, allauth's notices) and whose own catalogues have no Kazakh.

Listed here, never called, so that ``make messages`` copies them into ``locale/``, where Russian
and Kazakh are kept with the rest. ``locale/`` comes first (LOCALE_PATHS), so these translations
answer the libraries' own gettext calls. Each msgid is written exactly as the library writes it.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop, ngettext_lazy

# allauth.account.adapter.DefaultAccountAdapter.error_messages and its forms
ALLAUTH_ERRORS = (
    gettext_noop("This account is currently inactive."),
    gettext_noop("A user is already registered with this email address."),
    gettext_noop("Please type your current password."),
    gettext_noop("Incorrect password."),
    gettext_noop("Invalid or expired key."),
    gettext_noop("The password reset token was invalid."),
    gettext_noop("Be patient, you are sending too many requests."),
    gettext_noop("You must type the same password each time."),
    gettext_noop("The email address and/or password you specified are not correct."),
)
# allauth's templates account/messages/*.txt (the notices after logging in, out, …)
ALLAUTH_NOTICES = (
    gettext_noop("Successfully signed in as %(name)s."),
    gettext_noop("You have signed out."),
    gettext_noop("Password successfully changed."),
    gettext_noop("Password successfully set."),
    gettext_noop("Confirmation email sent to %(email)s."),
    gettext_noop("You have confirmed %(email)s."),
    gettext_noop(
        "Unable to confirm %(email)s because it is already confirmed by a different account."
    ),
)
# django.contrib.auth: the password validators of settings.AUTH_PASSWORD_VALIDATORS
DJANGO_PASSWORD_ERRORS = (
    ngettext_lazy(
        "This password is too short. It must contain at least %d character.",
        "This password is too short. It must contain at least %d characters.",
        8,
    ),
    gettext_noop("This password is too common."),
    gettext_noop("This password is entirely numeric."),
    gettext_noop("The password is too similar to the %(verbose_name)s."),
    gettext_noop("The two password fields didn’t match."),
)
