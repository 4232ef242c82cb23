"""REST routes (``/api/trials/<slug>/...``) and pages (``/projects/<slug>/trial/...``) of trials."""

from django.urls import path

from trials import api, pages

A = "api/trials/<slug:slug>/"
P = "projects/<slug:slug>/trial/"

urlpatterns = [
    path(A, api.TrialView.as_view(), name="trial"),
    path(A + "subjects/", api.SubjectsView.as_view(), name="trial-subjects"),
    path(A + "assign/", api.AssignView.as_view(), name="trial-assign"),
    path(A + "reads/", api.ReadListView.as_view(), name="trial-reads"),
    path(A + "reads/<int:pk>/", api.ReadDetailView.as_view(), name="trial-read"),
    path(A + "reads/<int:pk>/lesions/", api.LesionListView.as_view(), name="trial-lesions"),
    path(A + "reads/<int:pk>/lesions/<int:lesion>/", api.LesionDetailView.as_view(), name="trial-lesion"),
    path(A + "reads/<int:pk>/assessments/", api.AssessmentView.as_view(), name="trial-assessments"),
    path(A + "reads/<int:pk>/marks/", api.MarkListView.as_view(), name="trial-marks"),
    path(A + "reads/<int:pk>/marks/<int:annotation>/", api.MarkDetailView.as_view(), name="trial-mark"),
    path(A + "reads/<int:pk>/sign/", api.SignView.as_view(), name="trial-sign"),
    path(A + "reads/<int:pk>/sr/", api.SRExportView.as_view(), name="trial-sr"),
    path(A + "subjects/<int:pk>/adjudication/", api.AdjudicationView.as_view(), name="trial-adjudication"),
    path(A + "dashboard/", api.DashboardView.as_view(), name="trial-dashboard-api"),
    path(A + "export.csv", api.CsvExportView.as_view(), name="trial-csv"),
    path(P, pages.worklist, name="trial-worklist"),
    path(P + "reads/<int:pk>/", pages.read, name="trial-read-page"),
    path(P + "reads/<int:pk>/summary/", pages.read_summary, name="trial-read-summary"),
    path(P + "subjects/<int:pk>/adjudicate/", pages.adjudicate, name="trial-adjudicate-page"),
    path(P + "dashboard/", pages.dashboard, name="trial-dashboard"),
]
