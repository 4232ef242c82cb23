from django.urls import path

from audit import api

urlpatterns = [
    path("api/projects/<slug:slug>/audit/", api.AuditLogView.as_view(), name="audit-log"),
    path("api/projects/<slug:slug>/audit/views/", api.ViewingReportView.as_view(), name="audit-views"),
    path("projects/<slug:slug>/audit/", api.audit_page, name="audit-page"),
]
