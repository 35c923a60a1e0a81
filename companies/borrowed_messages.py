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

# allauth.mfa: two-factor sign-in pages, forms, errors and notices (templates/mfa/*, mfa/*.py),
# and the password confirmation (account/reauthenticate.html) that guards changing them
ALLAUTH_MFA = (
    gettext_noop(
        "You cannot add an email address to an account protected by two-factor authentication."
    ),
    gettext_noop("You cannot deactivate two-factor authentication."),
    gettext_noop(
        "You cannot generate recovery codes without having two-factor authentication enabled."
    ),
    gettext_noop("Incorrect code."),
    gettext_noop(
        "You cannot activate two-factor authentication until you have verified your email address."
    ),
    gettext_noop("Master key"),
    gettext_noop("Backup key"),
    gettext_noop("Key nr. {number}"),
    gettext_noop("Code"),
    gettext_noop("Authenticator code"),
    gettext_noop("Passwordless"),
    gettext_noop(
        "Enabling passwordless operation allows you to sign in using just this key, but imposes"
        " additional requirements such as biometrics or PIN protection."
    ),
    gettext_noop("Confirm Access"),
    gettext_noop("Please reauthenticate to safeguard your account."),
    gettext_noop("Alternative options"),
    gettext_noop("Enter your password:"),
    gettext_noop("Confirm"),
    gettext_noop("Sign In"),
    gettext_noop("Two-Factor Authentication"),
    gettext_noop(
        "Your account is protected by two-factor authentication. Please enter an authenticator "
        "code:"
    ),
    gettext_noop("Use a security key"),
    gettext_noop("Authenticator App"),
    gettext_noop("Authentication using an authenticator app is active."),
    gettext_noop("An authenticator app is not active."),
    gettext_noop("Deactivate"),
    gettext_noop("Security Keys"),
    gettext_noop("No security keys have been added."),
    gettext_noop("Manage"),
    gettext_noop("Add"),
    gettext_noop("Recovery Codes"),
    gettext_noop("No recovery codes set up."),
    gettext_noop("View"),
    gettext_noop("Download"),
    gettext_noop("Generate"),
    gettext_noop("A new set of recovery codes has been generated."),
    gettext_noop("Save them  in a secure location now — they won't be shown again."),
    gettext_noop("Authenticator app activated."),
    gettext_noop("Authenticator app deactivated."),
    gettext_noop("Security key added."),
    gettext_noop("Security key removed."),
    gettext_noop("Enter an authenticator code:"),
    gettext_noop("You are about to generate a new set of recovery codes for your account."),
    gettext_noop("This action will invalidate your existing codes."),
    gettext_noop("Are you sure?"),
    gettext_noop("Unused codes"),
    gettext_noop("Download codes"),
    gettext_noop("Generate new codes"),
    gettext_noop("I have saved my recovery codes"),
    gettext_noop("Activate Authenticator App"),
    gettext_noop(
        "To protect your account with two-factor authentication, scan the QR code below with "
        "your authenticator app. Then, input the verification code generated by the app below."
    ),
    gettext_noop("Authenticator secret"),
    gettext_noop(
        "You can store this secret and use it to reinstall your authenticator app at a later time."
    ),
    gettext_noop("Deactivate Authenticator App"),
    gettext_noop(
        "You are about to deactivate authenticator app based authentication. Are you sure?"
    ),
    gettext_noop("Add Security Key"),
    gettext_noop("Remove Security Key"),
    gettext_noop("Are you sure you want to remove this security key?"),
    gettext_noop("Usage"),
    gettext_noop("Passkey"),
    gettext_noop("Security key"),
    gettext_noop("This key does not indicate whether it is a passkey."),
    gettext_noop("Unspecified"),
    gettext_noop("Added on %(created_at)s"),
    gettext_noop("Last used %(last_used)s"),
    gettext_noop("Edit Security Key"),
    gettext_noop("This functionality requires JavaScript."),
    ngettext_lazy(
        "You have added %(count)s security key.",
        "You have added %(count)s security keys.",
        2,
    ),
    ngettext_lazy(
        "There is %(unused_count)s out of %(total_count)s recovery codes available.",
        "There are %(unused_count)s out of %(total_count)s recovery codes available.",
        2,
    ),
)
