"""DICOMweb routes, mounted under ``projects/<slug>/dicomweb/``."""

from django.urls import path

from viewer import render_views
from viewer.dicomweb import views

S = "studies/<str:study>"
SE = S + "/series/<str:series>"
I = SE + "/instances/<str:instance>"

urlpatterns = [
    path("studies", views.studies),
    path("series", views.all_series),
    path("instances", views.all_instances),
    path(S, views.study),
    path(S + "/metadata", views.study_metadata),
    path(S + "/series", views.study_series),
    path(S + "/instances", views.study_instances),
    path(SE, views.series),
    path(SE + "/metadata", views.series_metadata),
    path(SE + "/instances", views.series_instances),
    path(I, views.instance),
    path(I + "/metadata", views.instance_metadata),
    path(I + "/frames/<str:frames>", views.frames),
    path(I + "/bulkdata/<str:tag>", views.bulkdata),
    # Rendered resources (PS3.18 10.4.1.1.3)
    path(I + "/rendered", render_views.instance_rendered),
    path(I + "/frames/<str:frame>/rendered", render_views.frame_rendered),
    path(S + "/thumbnail", render_views.study_thumbnail),
    path(SE + "/thumbnail", render_views.series_thumbnail),
    path(I + "/thumbnail", render_views.instance_thumbnail),
]
