"""Guessing passwords is throttled by account and by address, with a message that says what happened."""

from django.urls import reverse

from tests.factories import PASSWORD, UserFactory


def log_in(client, username, password, address="203.0.113.7"):
    return client.post(reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address)


def test_thirty_wrong_passwords_then_the_right_one_is_refused_with_a_clear_message(client, learner):
    for attempt in range(30):
        log_in(client, learner.username, f"wrong-{attempt}")
    response = log_in(client, learner.username, PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Too many failed log-ins" in page and "even the right password is refused" in page
    assert "about 15 minutes" in page
    assert "_auth_user_id" not in client.session


def test_the_account_stays_locked_from_another_address(client, learner):
    for attempt in range(10):
        log_in(client, learner.username, f"wrong-{attempt}", address="203.0.113.7")
    assert log_in(client, learner.username, PASSWORD, address="198.51.100.9").status_code == 429


def test_one_address_guessing_many_accounts_is_locked_out(client, db):
    users = [UserFactory(username=f"user{n}") for n in range(11)]
    for user in users[:10]:
        log_in(client, user.username, "wrong", address="203.0.113.8")
    assert log_in(client, users[10].username, PASSWORD, address="203.0.113.8").status_code == 429
    # another address is not affected
    assert log_in(client, users[10].username, PASSWORD, address="198.51.100.10").status_code == 302


def test_a_few_typos_then_the_right_password_logs_in(client, learner):
    for attempt in range(3):
        assert log_in(client, learner.username, f"typo-{attempt}").status_code == 200
    assert log_in(client, learner.username, PASSWORD).status_code == 302
