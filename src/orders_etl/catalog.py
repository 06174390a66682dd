"""The Iceberg catalog, configured once: Spark conf and pyiceberg properties from one object.

Spark (the transform job) and pyiceberg (checks, tests) must reach the same tables, so
both are configured from a single `CatalogConfig`. JDBC is what runs locally (Postgres);
REST, Glue and Hive are what clusters use; the warehouse is always on S3 (S3FileIO).
Credentials are optional: in a cluster they come from the environment (AWS_* variables
from a Secret, IRSA), never from a ConfigMap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CatalogType = Literal["jdbc", "rest", "glue", "hive"]

SPARK_EXTENSIONS = "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions"


@dataclass(frozen=True)
class S3Config:
    endpoint: str | None = None  # None: AWS's own endpoints
    region: str = "us-east-1"
    path_style: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None


@dataclass(frozen=True)
class CatalogConfig:
    name: str
    type: CatalogType
    warehouse: str
    uri: str | None = None
    #: JDBC catalog only: the database user and password.
    jdbc_user: str | None = None
    jdbc_password: str | None = None
    s3: S3Config = field(default_factory=S3Config)
    #: Extra catalog properties passed through to both engines unchanged.
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"catalog name {self.name!r} must be a plain identifier")
        if self.type in ("jdbc", "rest", "hive") and not self.uri:
            raise ValueError(f"a {self.type} catalog needs a uri")
        if not self.warehouse.startswith(("s3://", "s3a://")):
            raise ValueError(f"warehouse {self.warehouse!r} must be an s3:// location")


def _catalog_properties(config: CatalogConfig) -> dict[str, str]:
    """Properties in Iceberg's own vocabulary, shared by Spark and pyiceberg."""
    props: dict[str, str] = {"warehouse": config.warehouse}
    if config.uri:
        props["uri"] = config.uri
    s3 = config.s3
    if s3.endpoint:
        props["s3.endpoint"] = s3.endpoint
    if s3.path_style:
        props["s3.path-style-access"] = "true"
    if s3.access_key_id and s3.secret_access_key:
        props["s3.access-key-id"] = s3.access_key_id
        props["s3.secret-access-key"] = s3.secret_access_key
    props["client.region"] = s3.region
    props.update(config.properties)
    return props


def spark_conf(config: CatalogConfig) -> dict[str, str]:
    """spark.sql.catalog.<name>.* settings for Iceberg's SparkCatalog with S3FileIO."""
    prefix = f"spark.sql.catalog.{config.name}"
    conf = {
        "spark.sql.extensions": SPARK_EXTENSIONS,
        prefix: "org.apache.iceberg.spark.SparkCatalog",
        f"{prefix}.type": config.type,
        f"{prefix}.io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
    }
    props = _catalog_properties(config)
    if config.type == "jdbc":
        if config.jdbc_user:
            props["jdbc.user"] = config.jdbc_user
        if config.jdbc_password:
            props["jdbc.password"] = config.jdbc_password
    conf.update({f"{prefix}.{key}": value for key, value in props.items()})
    return conf


def pyiceberg_properties(config: CatalogConfig) -> dict[str, str]:
    """Properties for pyiceberg.catalog.load_catalog(config.name, **props).

    A JDBC catalog is read through pyiceberg's SqlCatalog over the same tables
    (SQLAlchemy URL instead of the JDBC one).
    """
    props = _catalog_properties(config)
    if config.type == "jdbc":
        props["type"] = "sql"
        props["uri"] = _jdbc_to_sqlalchemy(props["uri"], config.jdbc_user, config.jdbc_password)
    else:
        props["type"] = config.type
    return props


def _jdbc_to_sqlalchemy(uri: str, user: str | None, password: str | None) -> str:
    prefix = "jdbc:postgresql://"
    if not uri.startswith(prefix):
        raise ValueError(f"only PostgreSQL JDBC catalogs are supported, got {uri!r}")
    auth = f"{user}:{password}@" if user and password else (f"{user}@" if user else "")
    return f"postgresql+psycopg2://{auth}{uri[len(prefix) :]}"
