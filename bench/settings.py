"""The development settings `bin/run` uses (with DJANGO_DEBUG=0 from bench/site_load.py), plus one
URL: a bare Django view, the yardstick for the lesson and question pages' throughput."""

from meshlearn.settings.dev import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
