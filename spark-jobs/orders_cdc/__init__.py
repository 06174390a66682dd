"""The orders CDC Spark job: Debezium events from staging into Iceberg bronze, silver, gold.

Entry point: `orders_cdc.job.main` (spark-submit main file: spark-jobs/main.py).
"""
