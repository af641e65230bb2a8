"""A minimal authenticated view for the fence benchmark."""

from django.http import HttpRequest, HttpResponse
from django.urls import path


def me(request: HttpRequest) -> HttpResponse:
    """Return the id of the logged-in user (403 if anonymous)."""
    if not request.user.is_authenticated:
        return HttpResponse("anonymous", status=403)
    return HttpResponse(str(request.user.pk))


urlpatterns = [path("me/", me)]
