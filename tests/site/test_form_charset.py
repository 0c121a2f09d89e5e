"""A form that declares a charset other than UTF-8 is refused with a 400 that says what to do, on every
page (the log-in included), never a 500: under the test settings here, and under the production settings
behind a real uvicorn."""

import http.client
import re

import pytest
from django.urls import reverse

from tests.sandbox.live_support import uvicorn_server

UTF16_FORM = "application/x-www-form-urlencoded; charset=utf-16"
BODY = "username=ada&password=nope".encode("utf-16")


@pytest.mark.parametrize("url", ["/accounts/login/", "/accounts/signup/", "/practice/", "/no-such-page/"])
def test_a_utf16_form_is_a_400_with_a_message(client, db, url):
    response = client.generic("POST", url, data=BODY, content_type=UTF16_FORM)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert "Reload the page and send the form again" in response.content.decode()


def test_an_unknown_charset_is_a_400_too(client, db):
    response = client.generic(
        "POST", reverse("login"), data=b"username=ada", content_type="multipart/form-data; charset=nope"
    )
    assert response.status_code == 400 and "'nope'" in response.content.decode()


def test_a_utf8_form_is_read_as_before(client, learner):
    response = client.post(
        reverse("login"),
        data="username=ada&password=wrong",
        content_type="application/x-www-form-urlencoded; charset=UTF-8",
    )
    assert response.status_code == 200 and "enter a correct username and password" in response.content.decode()


@pytest.mark.integration
def test_under_production_settings_behind_uvicorn_the_login_says_400(transactional_db, tmp_path):
    production = {
        "DJANGO_SETTINGS_MODULE": "meshlearn.settings.production",
        "DJANGO_SECRET_KEY": "a-test-only-secret-that-is-long-enough-for-the-production-profile-0123",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",  # plain HTTP on loopback, as behind a TLS-terminating proxy
    }
    with uvicorn_server(tmp_path, environment=production) as (port, _pid):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("POST", "/accounts/login/", body=BODY, headers={"Content-Type": UTF16_FORM})
        response = connection.getresponse()
        body = response.read().decode()
        connection.close()
    assert response.status == 400, body
    assert "Reload the page and send the form again" in body


@pytest.mark.integration
def test_behind_uvicorn_a_login_with_its_csrf_token_and_a_utf16_charset_says_400(transactional_db, tmp_path):
    """The report's case: a real log-in form (cookie and token) declaring UTF-16 was a 500."""
    with uvicorn_server(tmp_path) as (port, _pid):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request("GET", "/accounts/login/")
        page = connection.getresponse()
        html = page.read().decode()
        cookie = page.getheader("Set-Cookie").split(";")[0]
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
        connection.request(
            "POST",
            "/accounts/login/",
            body=f"csrfmiddlewaretoken={token}&username=ada&password=nope".encode(),
            headers={"Content-Type": UTF16_FORM, "Cookie": cookie, "Referer": f"http://127.0.0.1:{port}/"},
        )
        response = connection.getresponse()
        body = response.read().decode()
        connection.close()
    assert response.status == 400, body
    assert response.getheader("Content-Type").startswith("text/plain")
    assert "Reload the page and send the form again" in body
