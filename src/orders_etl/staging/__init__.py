"""Staging a batch: claiming offsets (ledger), writing them to S3 (stager), checking the
result before Spark reads it (verify). The format itself is orders_contract.staging."""
