"""REST routes of annotations (measurements, ROIs)."""

from django.urls import path

from annotations import api

urlpatterns = [
    path("api/projects/<slug:slug>/annotations/", api.AnnotationListView.as_view(), name="annotations"),
    path("api/projects/<slug:slug>/annotations/export/", api.AnnotationExportView.as_view(), name="annotations-export"),
    path(
        "api/projects/<slug:slug>/annotations/<int:pk>/",
        api.AnnotationDetailView.as_view(),
        name="annotation",
    ),
]
