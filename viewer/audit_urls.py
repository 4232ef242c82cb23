"""The audit trail's web views: a project's log (organizers), its exports, and viewing reports.

They live in ``viewer`` (above the trail): ``audit`` is the trail itself and imports no app.
"""

from django.urls import path

from viewer import audit_views as api

urlpatterns = [
    path("api/projects/<slug:slug>/audit/", api.AuditLogView.as_view(), name="audit-log"),
    path("api/projects/<slug:slug>/audit/views/", api.ViewingReportView.as_view(), name="audit-views"),
    path("projects/<slug:slug>/audit/", api.audit_page, name="audit-page"),
]
