"""URLs of the revocation app: mount with `path("", include("revocation.urls"))`."""

from django.urls import path

from . import views

app_name = "revocation"

urlpatterns = [
    path("sessions/", views.sessions_page, name="sessions"),
    path("sessions/<int:session_id>/logout/", views.end_session, name="end-session"),
    path("sessions/logout-others/", views.end_other_sessions, name="end-other-sessions"),
    path("revocations/", views.revocations_page, name="revocations"),
]
