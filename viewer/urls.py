from django.urls import include, path

from viewer import api, member_pages, render_views, tag_views

urlpatterns = [
    path("api/projects/", api.ProjectListView.as_view(), name="projects"),
    path("api/projects/<slug:slug>/", api.ProjectDetailView.as_view(), name="project"),
    path("api/projects/<slug:slug>/members/", api.MembersView.as_view(), name="members"),
    path("api/projects/<slug:slug>/upload/", api.UploadView.as_view(), name="upload"),
    path("api/projects/<slug:slug>/quarantine/", api.QuarantineView.as_view(), name="quarantine"),
    path("api/projects/<slug:slug>/quarantine/<str:sop>/", api.QuarantineView.as_view(), name="quarantine-decision"),
    path("api/presets/", api.PresetsView.as_view(), name="presets"),
    path("api/me/presets/", api.MyPresetsView.as_view(), name="my-presets"),
    path("api/me/presets/order/", api.MyPresetsOrderView.as_view(), name="my-presets-order"),
    path("api/me/presets/<int:preset_id>/", api.MyPresetView.as_view(), name="my-preset"),
    path("api/health/", api.health, name="health"),
    path("projects/<slug:slug>/members/", member_pages.members, name="members-page"),
    path("projects/<slug:slug>/dicomweb/", include("viewer.dicomweb.urls")),
    path("projects/<slug:slug>/series/<str:series>/mpr/<str:plane>", render_views.mpr_description, name="mpr"),
    path("projects/<slug:slug>/series/<str:series>/mpr/<str:plane>/<str:index>", render_views.mpr_plane,
         name="mpr-plane"),
    path("projects/<slug:slug>/instances/<str:sop>/tags", tag_views.instance_tags, name="instance-tags"),
    path("projects/<slug:slug>/tiles/<str:sop>/<str:frame>.dzi", render_views.dzi, name="dzi"),
    path(
        "projects/<slug:slug>/tiles/<str:sop>/<str:frame>_files/<int:level>/<int:col>_<int:row>.<str:ext>",
        render_views.tile,
        name="tile",
    ),
]
