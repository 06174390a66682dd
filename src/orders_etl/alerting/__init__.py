"""Failure alerting: an Airflow listener plugin (retry = warning, final failure = page)."""
