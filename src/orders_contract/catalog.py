"""The Iceberg catalog, described once as data: Spark conf and pyiceberg properties from it.

Spark (the transform job) and pyiceberg (the ClickHouse load, checks, tests) must reach
the same tables, so both are configured from one `CatalogConfig`. The chart renders it as
data, `iceberg-catalog.json` in the SparkApplication template's ConfigMap (mounted in the
Airflow pods), never as engine settings: the transform task adds `spark_conf()` of it to
the SparkApplication it submits, and the load task opens the catalog with
`pyiceberg_properties()` of it.

JDBC is what runs locally (Postgres); REST, Glue and Hive are what clusters use; the
warehouse is always on S3 (S3FileIO: no Hadoop file system is in the images, so Iceberg's
`hadoop` catalog type cannot work and is refused). Credentials are never in the data:
S3 keys come from the environment (AWS_* from a Secret, or IRSA), the catalog's own login
from the `CREDENTIAL_ENV` variables (`with_credentials_from_env`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast, get_args

CatalogType = Literal["jdbc", "rest", "glue", "hive"]
#: The catalog types both engines are configured for (the chart's schema allows these).
CATALOG_TYPES: tuple[str, ...] = get_args(CatalogType)

#: Environment variable -> catalog property, for the catalog's own login: read in every
#: process that opens the catalog (the Spark driver, the Airflow workers).
CREDENTIAL_ENV: dict[str, str] = {
    "ICEBERG_JDBC_USER": "jdbc.user",
    "ICEBERG_JDBC_PASSWORD": "jdbc.password",
    "ICEBERG_REST_TOKEN": "token",
}

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
    #: REST catalog only: a bearer token.
    token: str | None = None
    s3: S3Config = field(default_factory=S3Config)
    #: Extra catalog properties passed through to both engines unchanged.
    properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.type not in CATALOG_TYPES:
            supported = ", ".join(CATALOG_TYPES)
            raise ValueError(f"catalog type {self.type!r} is not supported; use one of {supported}")
        if not self.name.isidentifier():
            raise ValueError(f"catalog name {self.name!r} must be a plain identifier")
        if self.type in ("jdbc", "rest", "hive") and not self.uri:
            raise ValueError(f"a {self.type} catalog needs a uri")
        if not self.warehouse.startswith(("s3://", "s3a://")):
            raise ValueError(f"warehouse {self.warehouse!r} must be an s3:// location")

    # -- as data -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The description without credentials (what the chart renders)."""
        return {
            "name": self.name,
            "type": self.type,
            "uri": self.uri or "",
            "warehouse": self.warehouse,
            "s3": {
                "endpoint": self.s3.endpoint or "",
                "region": self.s3.region,
                "pathStyleAccess": self.s3.path_style,
            },
            "properties": dict(self.properties),
        }

    @classmethod
    def from_dict(cls, body: Mapping[str, Any]) -> CatalogConfig:
        known = {"name", "type", "uri", "warehouse", "s3", "properties"}
        if unknown := sorted(set(body) - known):
            raise ValueError(f"unknown catalog key(s) {', '.join(unknown)}")
        s3 = dict(body.get("s3") or {})
        if unknown := sorted(set(s3) - {"endpoint", "region", "pathStyleAccess"}):
            raise ValueError(f"unknown catalog s3 key(s) {', '.join(unknown)}")
        return cls(
            name=str(body["name"]),
            type=cast(CatalogType, str(body["type"])),
            warehouse=str(body["warehouse"]),
            uri=str(body["uri"]) if body.get("uri") else None,
            s3=S3Config(
                endpoint=str(s3["endpoint"]) if s3.get("endpoint") else None,
                region=str(s3.get("region") or "us-east-1"),
                path_style=bool(s3.get("pathStyleAccess", False)),
            ),
            properties={str(k): str(v) for k, v in (body.get("properties") or {}).items()},
        )

    def with_credentials_from_env(self, env: Mapping[str, str] | None = None) -> CatalogConfig:
        """This catalog with the login the CREDENTIAL_ENV variables hold (unset: none)."""
        env = os.environ if env is None else env
        return replace(
            self,
            jdbc_user=env.get("ICEBERG_JDBC_USER") or self.jdbc_user,
            jdbc_password=env.get("ICEBERG_JDBC_PASSWORD") or self.jdbc_password,
            token=env.get("ICEBERG_REST_TOKEN") or self.token,
        )


def load_catalog_file(path: str | Path) -> CatalogConfig:
    """The catalog described by a JSON file (the chart's iceberg-catalog.json)."""
    try:
        body = json.loads(Path(path).read_text())
        return CatalogConfig.from_dict(body)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a usable Iceberg catalog description: {error}") from None


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
    if config.token:
        props["token"] = config.token
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
