"""Benchmarks run by hand (``python -m bench.<name>``): the engine against bare Celery, the brokers."""
