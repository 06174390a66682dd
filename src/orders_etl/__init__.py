"""Orders ETL pipeline: Kafka staging, SparkApplication orchestration, ClickHouse load."""
