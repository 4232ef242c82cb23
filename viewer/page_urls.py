"""Server-rendered pages of the viewer (worklist, upload, viewer)."""

from django.urls import path

from viewer import pages

urlpatterns = [
    path("", pages.home, name="home"),
    path("projects/<slug:slug>/", pages.worklist, name="worklist"),
    path("projects/<slug:slug>/upload/", pages.upload, name="upload-page"),
    path("projects/<slug:slug>/studies/<str:study_uid>/", pages.viewer, name="viewer"),
]

# The static files are served by crossread.staticfiles, in front of Django (debugging or not).
