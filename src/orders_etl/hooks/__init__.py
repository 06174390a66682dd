"""Airflow hooks of the orders ETL (ClickHouse)."""
