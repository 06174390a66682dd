"""Airflow DAG file: orders ETL (Kafka CDC -> S3 staging -> Spark/Iceberg -> ClickHouse).

Thin on purpose: the pipeline lives in the orders_etl package; configuration comes from
orders_etl/defaults/pipeline.yaml overlaid with $ORDERS_ETL_CONFIG.
"""

from orders_etl.dag import build_dag

dag = build_dag()
