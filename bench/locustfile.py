"""Simulated learners for bench/site_load.py (run by it; not a test).

BENCH_MODE=learners: each user is one learner who reads lessons, opens the course page and practises
(start a lesson's practice, read the question, answer it through htmx), thinking 1-5 s between steps.
BENCH_MODE=saturate-lesson | saturate-question | saturate-bare: no think time, one page over and over,
to measure the server's saturated throughput of that page.

Every status code >= 500 is counted and written to BENCH_STATUS_FILE when the run ends."""

import json
import os
import random
import re
import secrets
from collections import Counter

from locust import FastHttpUser, between, constant, events, task

DATA = json.loads(open(os.environ["BENCH_DATA"]).read())
MODE = os.environ.get("BENCH_MODE", "learners")
CSRF = secrets.token_hex(16)
ACCOUNTS = list(DATA["learners"])
STATUSES: Counter = Counter()

QUESTION = re.compile(r'name="question" value="(\d+)"')
OPTION = re.compile(r'name="option" value="([0-9a-f-]{36})"')


@events.request.add_listener
def count_status(response=None, **kwargs):
    if response is not None:
        STATUSES[str(getattr(response, "status_code", 0))] += 1


@events.quitting.add_listener
def write_statuses(environment, **kwargs):
    path = os.environ.get("BENCH_STATUS_FILE")
    if path:
        with open(path, "w") as handle:
            json.dump(dict(STATUSES), handle)


class Learner(FastHttpUser):
    wait_time = between(1, 5) if MODE == "learners" else constant(0)

    def on_start(self):
        self.account = ACCOUNTS.pop() if ACCOUNTS else random.choice(DATA["learners"])
        self.headers = {"Cookie": f"sessionid={self.account['sessionid']}; csrftoken={CSRF}", "X-CSRFToken": CSRF}
        self.attempt_url = None

    def get(self, path, name):
        with self.client.get(path, headers=self.headers, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
            return response

    # ---------------------------------------------------------------- saturation: one page, no think time
    @task
    def saturate(self):
        if MODE == "saturate-lesson":
            self.get(f"/lessons/{DATA['lessons'][0]}/", "lesson page")
        elif MODE == "saturate-question":
            self.get(f"/practice/attempts/{self.account['attempt']}/", "question page")
        elif MODE == "saturate-bare":
            self.get("/bench/bare", "bare view")
        else:
            self.learn()

    # ---------------------------------------------------------------- a learner
    def learn(self):
        step = random.choices(["lesson", "course", "practise"], weights=[4, 1, 4])[0]
        if step == "lesson":
            self.get(f"/lessons/{random.choice(DATA['lessons'])}/", "lesson page")
        elif step == "course":
            self.get("/", "course page")
        else:
            self.practise()

    def practise(self):
        if self.attempt_url is None:
            with self.client.post(
                "/practice/start/",
                data={"kind": "lesson", "lesson": random.choice(DATA["lessons"])},
                headers=self.headers,
                name="start practice",
                allow_redirects=False,
                catch_response=True,
            ) as response:
                if response.status_code != 302:
                    response.failure(f"status {response.status_code}")
                    return
                self.attempt_url = response.headers["Location"]
            return
        page = self.get(self.attempt_url, "question page")
        question, options = QUESTION.search(page.text or ""), OPTION.findall(page.text or "")
        if question is None or not options:  # the summary: this practice session is finished
            self.attempt_url = None
            return
        self.wait()  # reading the question
        with self.client.post(
            self.attempt_url + "answer/",
            data={"question": question.group(1), "option": random.choice(options)},
            headers={**self.headers, "HX-Request": "true"},
            name="answer (htmx)",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}")
