"""Settings for Crossread.

Embedded defaults (SQLite, a data folder in the checkout, the in-memory channel layer) make a
laptop demo work with no configuration. The environment switches each piece for a deployment:

- ``DATABASE_URL``: ``postgres://user:password@host:5432/name`` (or ``sqlite:///path``)
- ``REDIS_URL``: ``redis://host:6379/0`` selects the channels-redis layer
- ``CROSSREAD_DATA_DIR``: where stored DICOM objects and the SQLite file live
- ``DJANGO_SECRET_KEY``, ``DJANGO_DEBUG``, ``DJANGO_ALLOWED_HOSTS`` (comma separated)
- ``CROSSREAD_TRUSTED_PROXIES``: the reverse proxies whose X-Forwarded-For is believed (comma separated)
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from crossread.env import (
    get_bool,
    get_int,
    get_json,
    get_list,
    get_networks,
    get_path,
    parse_database_url,
    sqlite_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = get_path("CROSSREAD_DATA_DIR", BASE_DIR / "data")

DEBUG = get_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or "crossread-insecure-development-key-change-me"
if not DEBUG and SECRET_KEY.startswith("crossread-insecure"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("Set DJANGO_SECRET_KEY when DJANGO_DEBUG is off.")
ALLOWED_HOSTS = get_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "channels",
    "audit",
    "viewer",
    "annotations",
    "collab",
    "trials",
    "demo",  # demo and test data: the phantom, the public corpora, load_demo (no production code imports it)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "crossread.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "crossread.security.LoginThrottledMiddleware",
    "audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "crossread.urls"
ASGI_APPLICATION = "crossread.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": parse_database_url(os.environ["DATABASE_URL"])}
else:
    DATABASES = {"default": sqlite_database(DATA_DIR / "crossread.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Every password check (login page, admin login, any view calling authenticate) is rate-limited there.
AUTHENTICATION_BACKENDS = ["crossread.logins.RateLimitedModelBackend"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "static-root"
# The server answers /static/ itself (crossread.staticfiles, WhiteNoise). In production the files are
# collected (`manage.py collectstatic`) under hashed names, with gzip and Brotli copies, and cached
# for good; while debugging they are read from static/ as they are.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage" if DEBUG else "crossread.staticfiles.ManifestStorage"
    },
}
# As the storage: while debugging, each request finds its file in static/ (decided here, where DEBUG
# comes from the environment, not by the test runner's DEBUG=False).
WHITENOISE_USE_FINDERS = WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_MAX_AGE = 0 if DEBUG else 60  # unhashed names (hashed ones are cached for good)
WHITENOISE_ALLOW_ALL_ORIGINS = False  # this site's pages only

# Sessions end after CROSSREAD_SESSION_HOURS (default 8, a working day) and with the browser.
SESSION_COOKIE_AGE = get_int("CROSSREAD_SESSION_HOURS", 8) * 3600
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# Behind TLS (set CROSSREAD_TLS=1): secure cookies, HSTS, and trust the proxy's X-Forwarded-Proto.
if get_bool("CROSSREAD_TLS", False):
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 31536000
    SECURE_SSL_REDIRECT = get_bool("CROSSREAD_SSL_REDIRECT", True)
CSRF_TRUSTED_ORIGINS = get_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

# Uploads: DICOM files are large; the ingest limits below are what protects the server.
DATA_UPLOAD_MAX_MEMORY_SIZE = get_int("CROSSREAD_MAX_REQUEST_BYTES", 1024 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 10_000
# Larger uploads are spooled to files here while they arrive, not in the system's temporary folder:
# `manage.py clean_storage` removes those a killed process left (see viewer.ingest.clean_storage).
FILE_UPLOAD_TEMP_DIR = str(DATA_DIR / "tmp")
with contextlib.suppress(OSError):  # a read-only checkout can still run checks and tests
    Path(FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)

REST_FRAMEWORK = {
    # Token first: its WWW-Authenticate header makes unauthenticated API calls a 401, not a 403.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "EXCEPTION_HANDLER": "crossread.errors.drf_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

if os.environ.get("REDIS_URL"):
    # Shared by every process: login attempt counters and other small state.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}}
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub: a group send is one PUBLISH. The core layer's is four round trips and a
            # Lua script per message, which dominated the daphne profiles of bench/collab.py. What the
            # core layer adds (queues that outlive a process) buys nothing here: each process's session
            # hub is the group's only subscriber, ephemeral frames are at-most-once anyway, and a client
            # that reconnects takes a fresh snapshot (docs/collaboration.md).
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            # redis-py 8 gives up reading after 5 s by default (channels_redis issue 422).
            "CONFIG": {"hosts": [{"address": os.environ["REDIS_URL"], "socket_timeout": 15}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Application options, defaults in crossread.conf.DEFAULTS; unknown keys are an error.
CROSSREAD: dict[str, object] = {}
if os.environ.get("CROSSREAD_PUBLIC_URL"):
    # The external base URL (scheme://host[:port]) used in absolute URIs such as RetrieveURL and
    # BulkDataURI, for servers behind a proxy (and clients that send Host without the port).
    CROSSREAD["PUBLIC_URL"] = os.environ["CROSSREAD_PUBLIC_URL"].rstrip("/")
if os.environ.get("CROSSREAD_TRUSTED_PROXIES"):
    # The reverse proxies in front of the servers (comma separated addresses or CIDR networks): only
    # from them is X-Forwarded-For believed, to find a client's address (crossread.proxies).
    CROSSREAD["TRUSTED_PROXIES"] = get_networks("CROSSREAD_TRUSTED_PROXIES")
if os.environ.get("CROSSREAD_ICE_SERVERS"):
    # STUN and TURN servers of reading sessions' calls, JSON as RTCPeerConnection takes them (checked
    # when collab starts: collab.ice.check_config).
    CROSSREAD["ICE_SERVERS"] = get_json("CROSSREAD_ICE_SERVERS", [])
if os.environ.get("CROSSREAD_TURN_SECRET"):
    # coturn's static-auth-secret: each participant gets TURN credentials for TURN_TTL_SECONDS.
    CROSSREAD["TURN_SECRET"] = os.environ["CROSSREAD_TURN_SECRET"]
if os.environ.get("CROSSREAD_MAX_INSTANCE_BYTES"):
    CROSSREAD["MAX_INSTANCE_BYTES"] = get_int("CROSSREAD_MAX_INSTANCE_BYTES", 0)
# The DIMSE listener's limits (docs/dicomweb.md): CROSSREAD_DIMSE_MAX_ASSOCIATIONS and the others.
for _dimse in ("MAX_ASSOCIATIONS", "MAX_PDU_BYTES", "NETWORK_TIMEOUT", "ACSE_TIMEOUT", "DIMSE_TIMEOUT",
               "MAX_MATCHES"):
    if os.environ.get(f"CROSSREAD_DIMSE_{_dimse}"):
        CROSSREAD[f"DIMSE_{_dimse}"] = get_int(f"CROSSREAD_DIMSE_{_dimse}", 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("CROSSREAD_LOG_LEVEL", "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
