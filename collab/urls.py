"""REST routes and pages of reading sessions."""

from django.urls import path

from collab import api, pages

urlpatterns = [
    path("api/sessions/", api.SessionListView.as_view(), name="sessions"),
    path("api/sessions/<str:session_id>/", api.SessionDetailView.as_view(), name="session"),
    path("api/sessions/<str:session_id>/participants/", api.ParticipantsView.as_view(), name="session-participants"),
    path(
        "api/sessions/<str:session_id>/participants/<str:username>/",
        api.ParticipantDetailView.as_view(),
        name="session-participant",
    ),
    path("api/sessions/<str:session_id>/close/", api.CloseView.as_view(), name="session-close"),
    path("api/sessions/<str:session_id>/invitations/", api.InvitationsView.as_view(), name="session-invitations"),
    path(
        "api/sessions/<str:session_id>/invitations/<str:invitation_id>/",
        api.InvitationDetailView.as_view(),
        name="session-invitation",
    ),
    path("api/sessions/<str:session_id>/chat/", api.SessionChatView.as_view(), name="session-chat"),
    path("api/sessions/<str:session_id>/annotations/", api.SessionAnnotationsView.as_view(), name="session-annotations"),
    path(
        "api/sessions/<str:session_id>/annotations/<str:annotation_id>/",
        api.SessionAnnotationDetailView.as_view(),
        name="session-annotation",
    ),
    path("sessions/", pages.session_list, name="session-list"),
    path("sessions/new", pages.new_session, name="session-new"),
    path("sessions/join/<str:token>", pages.join, name="session-join"),
    path("sessions/<int:session_id>/", pages.lobby, name="session-lobby"),
]
