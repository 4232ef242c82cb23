from django.contrib import admin
from django.urls import include, path

from annotations.recist_api import EvaluateView
from crossread.security import RateLimitedLoginView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", RateLimitedLoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("viewer.page_urls")),  # pages: worklist, upload, viewer
    path("api/recist/evaluate", EvaluateView.as_view(), name="recist-evaluate"),
    path("", include("viewer.audit_urls")),  # the audit log, its exports, viewing reports
    path("", include("annotations.urls")),  # /api/projects/<slug>/annotations/...
    path("", include("collab.urls")),  # /api/sessions/... and session pages
    path("", include("trials.urls")),
    path("", include("viewer.urls")),  # archive APIs and DICOMweb
]
