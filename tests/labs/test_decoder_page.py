"""The decoder page: GET with a query and POST with CSRF, each explanation linked to the lab that reproduces it,
unknown or oversized input answered in words (never a 500)."""

import pytest
from django.test import Client
from django.urls import reverse

from labs.models import Lab


def test_get_with_a_query_explains_flags_and_links_the_lab(client, course):
    html = client.get(reverse("labs:decoder"), {"q": "503 UF,URX"}).content.decode()
    assert "Response flag UF" in html and "Response flag URX" in html
    assert Lab.objects.get(slug="kill-sidecar").get_absolute_url() in html
    assert "the caller&#x27;s sidecar (outbound)" in html


@pytest.mark.django_db
def test_post_needs_the_csrf_token_and_works_with_it():
    client = Client(enforce_csrf_checks=True)
    assert client.post(reverse("labs:decoder"), {"text": "UF"}).status_code == 403
    page = client.get(reverse("labs:decoder"))
    token = page.cookies["csrftoken"].value
    response = client.post(reverse("labs:decoder"), {"text": "tlsv1 alert unknown ca", "csrfmiddlewaretoken": token})
    assert response.status_code == 200 and "TLS handshake failure: unknown ca" in response.content.decode()


@pytest.mark.django_db
def test_htmx_gets_only_the_result_fragment(client):
    response = client.post(reverse("labs:decoder"), {"text": "UO"}, HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert html.strip().startswith('<div id="decoded"') and "<html" not in html and "Response flag UO" in html


@pytest.mark.django_db
@pytest.mark.parametrize("text", ["hello there", "\x00\x01\x02", "{{ 7*7 }}", "<script>alert(1)</script>", "é" * 50])
def test_unknown_input_is_not_recognised_in_words(client, text):
    response = client.post(reverse("labs:decoder"), {"text": text})
    html = response.content.decode()
    assert response.status_code == 200 and "Not recognised" in html
    assert "<script>alert(1)" not in html


@pytest.mark.django_db
def test_partly_known_input_names_what_was_not_recognised(client):
    html = client.get(reverse("labs:decoder"), {"q": "ZZQ,UF"}).content.decode()
    assert "Not recognised: <code>ZZQ</code>" in html and "Response flag UF" in html


@pytest.mark.django_db
def test_long_input_is_bounded_and_answered(client):
    response = client.post(reverse("labs:decoder"), {"text": "UF " + "x" * 30_000})
    html = response.content.decode()
    assert response.status_code == 200 and "Only the first 4,000 characters" in html and "Response flag UF" in html


@pytest.mark.django_db
def test_an_oversized_body_is_refused_in_words_before_it_is_read(client):
    response = client.post(reverse("labs:decoder"), {"text": "UF " + "x" * 500_000})
    assert response.status_code == 413 and "too large" in response.content.decode()
