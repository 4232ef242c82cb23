"""Server-rendered pages of the viewer (worklist, upload, viewer)."""

from django.conf import settings
from django.contrib.staticfiles.views import serve
from django.urls import path, re_path

from viewer import pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("projects/<slug:slug>/", pages.worklist, name="worklist"),
    path("projects/<slug:slug>/upload/", pages.upload, name="upload-page"),
    path("projects/<slug:slug>/studies/<str:study_uid>/", pages.viewer, name="viewer"),
]

if settings.DEBUG:
    # daphne started directly (tests, the demo) serves the static files itself while debugging;
    # a deployment serves STATIC_ROOT from nginx or a CDN (collectstatic).
    urlpatterns.append(re_path(r"^static/(?P<path>.*)$", serve))
