"""Airflow operators of the orders ETL (ClickHouse load)."""
