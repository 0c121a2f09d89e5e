"""ASGI entry point: Django behind the request edge (body caps before Django reads a body, disconnects
recorded for long responses; meshlearn/edge.py)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshlearn.settings.production")
django_application = get_asgi_application()

from .edge import RequestEdge  # noqa: E402  (imports settings: after Django is set up)

application = RequestEdge(django_application)
