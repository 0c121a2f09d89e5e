"""Settings profiles: base (shared), dev (the default), test, production."""
