"""Settings profiles: base (shared), dev (manage.py's default), local (bin/run's: a class), test, production."""
