"""Settings for nps_saas, read from the environment only.

``NPS_MODE`` selects one of three explicit profiles; nothing falls back to another
profile because a variable happens to be missing:

* ``embedded`` (the default, what ``make run`` and a bare ``manage.py`` use): SQLite under
  ``var/``, Celery tasks inline, mail and SMS into the development outbox.
* ``test``: PostgreSQL and Redis on their usual local ports (``DATABASE_URL``/``REDIS_URL``
  override), what ``make test`` uses.
* ``production``: every service must be configured; a missing secret, host list, database or
  broker stops the process at start-up.

Every variable read here is listed in ``.env.example``.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _
from kombu import Exchange, Queue

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

# Local state of the embedded default (SQLite file, generated secret key, demo credentials).
# NPS_VAR_DIR moves it, e.g. for a throwaway instance in a test.
VAR_DIR = Path(env.str("NPS_VAR_DIR", default=str(BASE_DIR / "var")))

EMBEDDED = "embedded"
TEST = "test"
PRODUCTION = "production"
NPS_MODE: str = env.str("NPS_MODE", default=EMBEDDED)
if NPS_MODE not in {EMBEDDED, TEST, PRODUCTION}:
    raise ImproperlyConfigured(f"NPS_MODE must be embedded, test or production, not {NPS_MODE!r}")
IS_PRODUCTION = NPS_MODE == PRODUCTION
IS_EMBEDDED = NPS_MODE == EMBEDDED


def required(name: str, kind: str = "str") -> Any:
    """Read a variable that production cannot run without."""
    if name not in env.ENVIRON or env.ENVIRON[name] == "":
        raise ImproperlyConfigured(f"{name} must be set when NPS_MODE=production")
    return getattr(env, kind)(name)


# --- Core -------------------------------------------------------------------------------------

if IS_PRODUCTION:
    SECRET_KEY: str = required("SECRET_KEY")
    ALLOWED_HOSTS: list[str] = required("ALLOWED_HOSTS", "list")
    DEBUG = env.bool("DEBUG", default=False)
else:
    # Outside production a per-checkout key is generated once and kept under var/, so sessions
    # survive restarts and no key is ever written into the repository.
    def _local_secret_key() -> str:
        from django.core.management.utils import get_random_secret_key

        key_file = VAR_DIR / "secret_key"
        if not key_file.exists():
            VAR_DIR.mkdir(parents=True, exist_ok=True)
            key_file.write_text(get_random_secret_key())
        return key_file.read_text().strip()

    SECRET_KEY = env.str("SECRET_KEY", default="") or _local_secret_key()
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
    DEBUG = env.bool("DEBUG", default=IS_EMBEDDED)

# The public address, used in links that leave the site (emails, SMS). Production must say it.
SITE_URL: str = (
    required("SITE_URL")
    if IS_PRODUCTION
    else env.str("SITE_URL", default=f"http://127.0.0.1:{env.int('PORT', default=8000)}")
).rstrip("/")
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.sites",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "anymail",
    "nps_saas",
    "companies",
    "audit",
    "notifications",
    "surveys",
    "responses",
    "dashboards",
    "delighted_compat",
    "widget",
    "privacy",
]

MIDDLEWARE = [
    # Outermost: each request starts with no company set for row-level security (companies.rls).
    "companies.rls.RowLevelSecurityMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "companies.middleware.StorableTextMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "companies.middleware.CompanyMiddleware",
]

ROOT_URLCONF = "nps_saas.urls"
WSGI_APPLICATION = "nps_saas.wsgi.application"
ASGI_APPLICATION = "nps_saas.asgi.application"
SITE_ID = 1

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "companies.context_processors.tenancy",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------------

if IS_PRODUCTION:
    DATABASES = {"default": required("DATABASE_URL", "db_url")}
    if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL when NPS_MODE=production")
elif NPS_MODE == TEST:
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/nps_saas")
    }
else:
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'nps_saas.sqlite3'}")
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # make run's request threads, its scheduler thread and command-line tools share one file:
    # take the write lock at BEGIN and wait for it, rather than fail with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        }
    )
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60 if IS_PRODUCTION else 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Row-level security (companies/rls.py): the choke points set the company on the database
# session, which the policies of every tenant table check. Off only to measure its cost or
# when the app connects as the tables' owner (then the policies do not bind anyway).
ROW_LEVEL_SECURITY = env.bool("ROW_LEVEL_SECURITY", default=True)
# The policies bind only a role that does not own the tables: in production the app connects
# as such a role (DATABASE_URL) and migrations run as the owner, through this second URL:
# `python manage.py migrate --database owner` (README, "Database roles").
if env.str("MIGRATION_DATABASE_URL", default=""):
    DATABASES["owner"] = env.db_url("MIGRATION_DATABASE_URL")
# Behind a transaction-mode pooler; also turns off nps_saas/db.py's prepared statements.
DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = env.bool(
    "DISABLE_SERVER_SIDE_CURSORS", default=False
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis, cache -----------------------------------------------------------------------------

if IS_PRODUCTION:
    REDIS_URL: str = required("REDIS_URL")
    if not REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured("REDIS_URL must be a Redis URL when NPS_MODE=production")
elif NPS_MODE == TEST:
    REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
else:
    # The embedded default runs without Redis; an explicit REDIS_URL opts back in.
    REDIS_URL = env.str("REDIS_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "nps",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Celery -----------------------------------------------------------------------------------

if IS_PRODUCTION:
    CELERY_BROKER_URL: str = required("CELERY_BROKER_URL")
    if not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://")):
        raise ImproperlyConfigured("CELERY_BROKER_URL must be a Redis URL when NPS_MODE=production")
    # Never inline in production, whatever the environment says: a missing worker must show.
    CELERY_TASK_ALWAYS_EAGER = False
elif NPS_MODE == TEST:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
    # Unit tests run tasks inline; tests that need the real worker start one (tests/conftest.py).
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
else:
    CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="memory://")
    CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With late acks a task whose worker lost the broker is redelivered anyway; stop running it.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# A task invisible to the broker for longer than this is redelivered (acks_late); it must
# exceed the hard time limit so a slow task is not run twice while still running.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT * 4}
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name)
    # "tests" (test mode only): for workers a test starts for itself (no task is routed there
    # and the shared test worker does not consume it).
    for name in ("default", "sends", "alerts", "rollups", *(["tests"] if NPS_MODE == TEST else []))
]
# A route to an undeclared queue is a typo that no worker would ever consume: fail instead.
CELERY_TASK_CREATE_MISSING_QUEUES = False
CELERY_TASK_ROUTES = {
    "notifications.*": {"queue": "sends"},
    "surveys.send_*": {"queue": "sends"},
    "responses.alert_*": {"queue": "alerts"},
    "dashboards.*": {"queue": "rollups"},
}
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "scheduler-heartbeat": {"task": "nps_saas.heartbeat", "schedule": 60.0},
    # Data retention, daily at a quiet hour (UTC): companies' old personal data anonymised or
    # deleted in small batches (nps_saas/retention.py).
    "nps-saas-retention-run-due": {
        "task": "nps_saas.retention_run_due",
        "schedule": crontab(hour=3, minute=17),
    },
    # Due invitations and campaigns live in the database; these pick them up.
    # Every 5 s: what lost its message is woken again within seconds (surveys/services/dispatch.py).
    "surveys-dispatch-due": {"task": "surveys.dispatch_due", "schedule": 5.0},
    # Recurring surveys: members due are asked (surveys/services/autopilot.py).
    "surveys-dispatch-autopilot": {"task": "surveys.dispatch_autopilot", "schedule": 15.0},
    "surveys-dispatch-reminders": {"task": "surveys.dispatch_reminders", "schedule": 300.0},
    # Rollup deltas folded into the rollup (dashboards/services.py); reads are exact without.
    "dashboards-rollup-fold": {"task": "dashboards.rollup_fold", "schedule": 5.0},
    # Daily/weekly digests due at their recipients' local hour (dashboards/digests.py).
    "dashboards-digests-dispatch-due": {
        "task": "dashboards.digests_dispatch_due",
        "schedule": 300.0,
    },
    # What answers owe (webhook events, alerts, follow-ups) paid from their rows, and alert
    # emails left by a dead worker (responses/effects.py).
    "responses-alert-drain": {"task": "responses.alert_drain", "schedule": 1.0},
    # Overdue follow-ups: marked, and their company's admins emailed once (responses/tasks.py).
    "responses-alert-escalate-overdue": {
        "task": "responses.alert_escalate_overdue",
        "schedule": 60.0,
    },
    # Provider calls whose outcome is unknown, looked up (notifications/transport.py).
    "notifications-deliveries-resolve-due": {
        "task": "notifications.deliveries_resolve_due",
        "schedule": 30.0,
    },
    # Delighted imports whose message was lost, woken again (delighted_compat/importer.py).
    "delighted-compat-imports-rewake": {
        "task": "delighted_compat.imports_rewake",
        "schedule": 60.0,
    },
    # Outbound webhook and Slack retries live in the database (notifications/webhooks.py).
    "notifications-webhooks-deliver-due": {
        "task": "notifications.webhooks_deliver_due",
        "schedule": 15.0,
    },
}
# Answer a detractor within this many hours (a company may set its own; the source articles
# cite a measurable loyalty gain from answering within 48 hours).
FOLLOWUP_SLA_HOURS: int = env.int("FOLLOWUP_SLA_HOURS", default=48)
# Replies to customers from a follow-up get reply-to reply+<token>@<this domain>; its inbound
# mail must reach anymail's inbound webhook. Empty: the reply-to is the agent's own address.
FOLLOWUP_REPLY_DOMAIN: str = env.str("FOLLOWUP_REPLY_DOMAIN", default="")
# Outbound webhooks and Slack posts go to URLs companies configure; addresses that are not
# public (loopback, private networks, link-local, …) are refused unless this is on (tests;
# a self-hosted install posting inside its own network).
WEBHOOK_ALLOW_PRIVATE_ADDRESSES: bool = env.bool("WEBHOOK_ALLOW_PRIVATE_ADDRESSES", default=False)
WEBHOOK_CONNECT_TIMEOUT = 5.0  # seconds
WEBHOOK_READ_TIMEOUT = 10.0  # seconds per socket read
WEBHOOK_TOTAL_TIMEOUT = 15.0  # seconds for the whole exchange
WEBHOOK_RESPONSE_MAX_BYTES = 16 * 1024  # read at most this much of an answer
# make run has no beat process: an in-process scheduler runs CELERY_BEAT_SCHEDULE instead.
EMBEDDED_SCHEDULER = env.bool("EMBEDDED_SCHEDULER", default=IS_EMBEDDED)

# --- Email ------------------------------------------------------------------------------------

DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="NPS <nps@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_PROVIDERS = {
    "postmark": "anymail.backends.postmark.EmailBackend",
    "mailgun": "anymail.backends.mailgun.EmailBackend",
    "amazon_ses": "anymail.backends.amazon_ses.EmailBackend",
    "brevo": "anymail.backends.brevo.EmailBackend",
    "mailjet": "anymail.backends.mailjet.EmailBackend",
    "sendgrid": "anymail.backends.sendgrid.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "outbox": "notifications.backends.OutboxEmailBackend",
}
EMAIL_PROVIDER: str = (
    required("EMAIL_PROVIDER") if IS_PRODUCTION else env.str("EMAIL_PROVIDER", default="outbox")
)
if EMAIL_PROVIDER not in EMAIL_PROVIDERS:
    raise ImproperlyConfigured(
        f"EMAIL_PROVIDER must be one of {', '.join(EMAIL_PROVIDERS)}, not {EMAIL_PROVIDER!r}"
    )
if IS_PRODUCTION and EMAIL_PROVIDER == "outbox":
    raise ImproperlyConfigured("The development outbox cannot deliver mail in production")
EMAIL_BACKEND = EMAIL_PROVIDERS[EMAIL_PROVIDER]
ANYMAIL = {
    "POSTMARK_SERVER_TOKEN": env.str("POSTMARK_SERVER_TOKEN", default=""),
    "MAILGUN_API_KEY": env.str("MAILGUN_API_KEY", default=""),
    "MAILGUN_SENDER_DOMAIN": env.str("MAILGUN_SENDER_DOMAIN", default=""),
    "MAILGUN_API_URL": env.str("MAILGUN_API_URL", default="https://api.mailgun.net/v3"),
    "AMAZON_SES_CLIENT_PARAMS": {"region_name": env.str("AWS_REGION", default="eu-west-1")},
    "BREVO_API_KEY": env.str("BREVO_API_KEY", default=""),
    "MAILJET_API_KEY": env.str("MAILJET_API_KEY", default=""),
    "MAILJET_SECRET_KEY": env.str("MAILJET_SECRET_KEY", default=""),
    "SENDGRID_API_KEY": env.str("SENDGRID_API_KEY", default=""),
    # Postmark's bulk API (broadcast stream) is the Postmark path that merges per-recipient
    # values into inline content, so campaigns go out 500 per call; without it Postmark gets
    # one call per message (notifications/email.py).
    "POSTMARK_USE_BULK_API": env.bool("POSTMARK_USE_BULK_API", default=False),
    # Only changed to point at a local fake provider (bench/send.py).
    "POSTMARK_API_URL": env.str("POSTMARK_API_URL", default="https://api.postmarkapp.com/"),
    # HTTP basic auth "user:password" that the providers' tracking webhooks must send
    # (/anymail/<provider>/tracking/). While it is empty those URLs answer 404, so they are
    # never open to unauthenticated posts (notifications/urls.py). Required in production with
    # an API provider: without the webhooks, bounces and complaints would never become
    # suppressions. Outside production a fixed development value is the default.
    "WEBHOOK_SECRET": (
        required("ANYMAIL_WEBHOOK_SECRET")
        if IS_PRODUCTION and EMAIL_PROVIDER != "smtp"
        else env.str(
            "ANYMAIL_WEBHOOK_SECRET", default="" if IS_PRODUCTION else "nps-dev:nps-dev-webhook"
        )
    ),
}
EMAIL_HOST: str = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT: int = env.int("EMAIL_PORT", default=1025)
EMAIL_HOST_USER: str = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD: str = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS: bool = env.bool("EMAIL_USE_TLS", default=False)
# The provider rate limit shared by all workers (notifications/ratelimit.py): messages per
# second, the burst a full bucket allows, and how long a send waits for tokens before it
# gives up with a retryable error.
EMAIL_RATE_PER_SECOND: float = env.float("EMAIL_RATE_PER_SECOND", default=100.0)
EMAIL_RATE_BURST: int = env.int("EMAIL_RATE_BURST", default=1000)
EMAIL_RATE_TIMEOUT: float = env.float("EMAIL_RATE_TIMEOUT", default=30.0)
# Seconds an alert email on an answer without a comment waits for the comment (the answer
# page records the score at the click, the "why?" comes after): it goes out when the comment
# lands, or when this wait is over without one (responses/alerts.py).
ALERT_COMMENT_WAIT_SECONDS: int = env.int("ALERT_COMMENT_WAIT_SECONDS", default=120)
# Seconds an email provider's API may take to answer one call (connect and each read). A
# call that times out after sending has an unknown outcome: it is looked up, never resent
# blindly (notifications/transport.py).
EMAIL_REQUEST_TIMEOUT: float = env.float("EMAIL_REQUEST_TIMEOUT", default=30.0)
ANYMAIL["REQUESTS_TIMEOUT"] = EMAIL_REQUEST_TIMEOUT
# Recipients per provider call; 0 means the provider's own cap (notifications/email.py).
EMAIL_BATCH_SIZE: int = env.int("EMAIL_BATCH_SIZE", default=0)

# The development outbox (/dev/outbox/) exists only in the embedded default.
DEV_OUTBOX_ENABLED = IS_EMBEDDED

# --- SMS (Twilio) -----------------------------------------------------------------------------

# Platform credentials. The auth token also checks the X-Twilio-Signature of webhooks; outside
# production a fixed development value is the default, so the development outbox can sign the
# replies typed as a customer (notifications/twilio_webhooks.py).
TWILIO_ACCOUNT_SID: str = env.str(
    "TWILIO_ACCOUNT_SID", default="" if IS_PRODUCTION else "AC00000000000000000000000000000000"
)
TWILIO_AUTH_TOKEN: str = env.str(
    "TWILIO_AUTH_TOKEN", default="" if IS_PRODUCTION else "nps-dev-twilio-auth-token"
)
# "twilio", or "outbox": the development outbox (the embedded default; refused in production).
SMS_PROVIDER: str = env.str("SMS_PROVIDER", default="outbox" if IS_EMBEDDED else "twilio")
if SMS_PROVIDER not in {"twilio", "outbox"}:
    raise ImproperlyConfigured(f"SMS_PROVIDER must be twilio or outbox, not {SMS_PROVIDER!r}")
if IS_PRODUCTION and SMS_PROVIDER == "outbox":
    raise ImproperlyConfigured("The development outbox cannot deliver SMS in production")
# Only changed to point at a local fake Twilio (bench/sms_rate.py).
TWILIO_API_URL: str = env.str("TWILIO_API_URL", default="")
# How long one SMS waits for its sender's shared rate limit before the send is retried later.
SMS_RATE_TIMEOUT: float = env.float("SMS_RATE_TIMEOUT", default=30.0)
# Seconds Twilio's API may take to answer one call (connect and each read); a timeout after
# sending is an unknown outcome, never resent blindly (notifications/transport.py).
SMS_REQUEST_TIMEOUT: float = env.float("SMS_REQUEST_TIMEOUT", default=30.0)
# The Fernet key (urlsafe base64 of 32 bytes) that encrypts secrets companies give us (their
# own Twilio auth token). Outside production a key derived from SECRET_KEY is the default; in
# production, without it, companies cannot store their own Twilio account.
CREDENTIALS_KEY: str = env.str(
    "CREDENTIALS_KEY",
    default=""
    if IS_PRODUCTION
    else base64.urlsafe_b64encode(
        hashlib.sha256(f"credentials:{SECRET_KEY}".encode()).digest()
    ).decode(),
)

# --- Auth, accounts ---------------------------------------------------------------------------

AUTH_USER_MODEL = "companies.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=(
        # Tests create hundreds of users; a slow hash only costs time there.
        ["django.contrib.auth.hashers.MD5PasswordHasher"]
        if NPS_MODE == TEST
        else [
            "django.contrib.auth.hashers.PBKDF2PasswordHasher",
            "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
        ]
    ),
)
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_FORMS = {
    "signup": "companies.forms.CompanySignupForm",
    "login": "companies.forms.AppLoginForm",
}
ACCOUNT_ADAPTER = "companies.adapters.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = ""
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if IS_PRODUCTION else "http"
ACCOUNT_RATE_LIMITS: dict[str, str] | bool = False if NPS_MODE == TEST else {}
TEAM_INVITE_TTL_DAYS = env.int("TEAM_INVITE_TTL_DAYS", default=7)

# Two-factor sign-in (allauth.mfa): an authenticator app (TOTP), passkeys and security keys
# (WebAuthn), and recovery codes; managed at /accounts/2fa/. A company may require it of its
# members (Company.require_mfa, enforced by companies.middleware.CompanyMiddleware).
MFA_SUPPORTED_TYPES = ["totp", "webauthn", "recovery_codes"]
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_FORMS = {"add_webauthn": "companies.forms.PasskeyAddForm"}
MFA_TOTP_ISSUER = env.str("MFA_TOTP_ISSUER", default="nps_saas")
# Browsers offer WebAuthn only to https origins and http://localhost; allauth's server side
# also refuses http unless this is on. Never in production.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = not IS_PRODUCTION

# --- Single sign-on (sso/) ----------------------------------------------------------------------
# Per-company OpenID Connect and SAML through allauth's providers. No app is configured here:
# sso.adapters builds each company's from its own rows. Password sign-in, sign-up and reset are
# refused for the domains of a company that requires SSO (sso/forms.py).
INSTALLED_APPS += [
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.socialaccount.providers.saml",
    "sso",
]
SOCIALACCOUNT_ADAPTER = "sso.adapters.SsoSocialAccountAdapter"
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10  # seconds per call to a company's IdP
ACCOUNT_FORMS.update(
    {
        "login": "sso.forms.SsoLoginForm",
        "signup": "sso.forms.SsoSignupForm",
        "reset_password": "sso.forms.SsoResetPasswordForm",
    }
)

# --- API --------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["companies.api_auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["companies.api_auth.HasCompanyApiKey"],
    "DEFAULT_PAGINATION_CLASS": "companies.api_base.CursorPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["companies.api_parsers.JSONParser"],
    "EXCEPTION_HANDLER": "companies.api_base.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "companies.schema.AutoSchema",
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_THROTTLE_CLASSES": ["companies.api_auth.ApiKeyRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api_key": env.str("API_RATE", default="600/min")},
    # Proxies in front of the app that append to X-Forwarded-For (a load balancer: 1). The
    # client address for rate limits (API keys, the survey web link) is read that many hops
    # from the right; 0 (the default) trusts only REMOTE_ADDR, as when clients connect directly.
    "NUM_PROXIES": env.int("NUM_PROXIES", default=0),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "nps_saas API",
    "DESCRIPTION": (
        "Net Promoter Score surveys, contacts, responses and metrics. Authenticate with "
        "`Authorization: Bearer <api key>`; every call acts on the key's company."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # The schema and docs are public: they describe the API's shape, no tenant data. The
    # Bearer security scheme comes from companies/schema.py.
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "companies.schema.add_field_errors_component",
    ],
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "companies.models.Role",
        "InvitableRoleEnum": "companies.serializers.INVITABLE_ROLE_CHOICES",
        "SurveyLanguageEnum": "surveys.models.LANGUAGE_CHOICES",
        "SurveyKindEnum": "surveys.models.SurveyKind",
        "SurveyStatusEnum": "surveys.models.SurveyStatus",
        "ScaleStyleEnum": "surveys.models.ScaleStyle",
        "ExtraQuestionKindEnum": "surveys.services.surveys.EXTRA_QUESTION_KINDS",
        "ChannelEnum": "notifications.models.Channel",
        # Campaigns may also go out on each contact's preferred channel.
        "CampaignChannelEnum": "surveys.models.CampaignChannel",
        # Answers also arrive by web link: a channel set of their own (the metrics filters).
        "ResponseChannelEnum": "responses.models.ResponseChannel",
    },
}

# --- i18n -------------------------------------------------------------------------------------

LANGUAGE_CODE = "en"
# The interface, the respondent pages and the emails speak English, Russian and Kazakh.
LANGUAGES = [("en", _("English")), ("ru", _("Russian")), ("kk", _("Kazakh"))]
SURVEY_LANGUAGES = [("en", "English"), ("ru", "Русский"), ("kk", "Қазақша")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"  # company pages and team emails switch to the company's zone
# One date and one date-time format per language (nps_saas/formats/<lang>/formats.py); for
# Kazakh, which Django has no formats for, the number formats too.
FORMAT_MODULE_PATH = ["nps_saas.formats"]
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------------------------

STATIC_URL = "/static/"
# Where collectstatic writes (production serves the collected manifest from here).
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if IS_PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"
# Outside production static files are served straight from the apps (no collectstatic step),
# so make run and the tests need no staticfiles/ directory.
WHITENOISE_USE_FINDERS = not IS_PRODUCTION
WHITENOISE_AUTOREFRESH = not IS_PRODUCTION

# --- Security ---------------------------------------------------------------------------------

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if IS_PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        # Swagger UI sets inline styles; nothing else needs them.
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# --- Logging ----------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
