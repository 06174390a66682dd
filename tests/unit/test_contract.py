"""orders_contract: the topic -> table rule and the catalog description both runtimes use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orders_contract.catalog import (
    CATALOG_TYPES,
    CatalogConfig,
    S3Config,
    load_catalog_file,
    pyiceberg_properties,
    spark_conf,
)
from orders_contract.s3uri import split_s3_uri
from orders_contract.topics import (
    DEFAULT_TOPICS,
    TABLES,
    UnknownTopicError,
    table_for_topic,
    tables_for_topics,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("topic", "table"),
    [
        ("orders.public.orders", "orders"),
        ("eu.sales.line_items", "line_items"),
        ("customers", "customers"),
    ],
)
def test_a_topic_carries_the_table_its_last_part_names(topic: str, table: str) -> None:
    assert table_for_topic(topic) == table


@pytest.mark.parametrize("topic", ["orders.public.order", "orders.public.orders.v2", ""])
def test_a_topic_of_no_contract_table_is_refused(topic: str) -> None:
    with pytest.raises(UnknownTopicError, match="does not carry a table of the data contract"):
        table_for_topic(topic)


def test_the_default_topics_are_one_per_table() -> None:
    assert tables_for_topics(list(DEFAULT_TOPICS.values())) == DEFAULT_TOPICS
    assert tuple(DEFAULT_TOPICS) == TABLES


@pytest.mark.parametrize(
    ("uri", "parts"),
    [("s3://b/k", ("b", "k")), ("s3://b/a/b/c.json", ("b", "a/b/c.json"))],
)
def test_s3_uris_split(uri: str, parts: tuple[str, str]) -> None:
    assert split_s3_uri(uri) == parts


@pytest.mark.parametrize("uri", ["s3://b", "s3:///k", "s3a://b/k", "/b/k"])
def test_a_bad_s3_uri_is_refused(uri: str) -> None:
    with pytest.raises(ValueError, match="s3"):
        split_s3_uri(uri)


def _jdbc() -> CatalogConfig:
    return CatalogConfig(
        "lakehouse",
        "jdbc",
        "s3://warehouse/",
        uri="jdbc:postgresql://pg:5432/iceberg",
        jdbc_user="iceberg",
        jdbc_password="secret",
        s3=S3Config(
            endpoint="http://s3:9000", path_style=True, access_key_id="k", secret_access_key="s"
        ),
        properties={"cache-enabled": "false"},
    )


def test_the_catalog_description_round_trips_without_its_credentials(tmp_path: Path) -> None:
    catalog = _jdbc()
    body = catalog.to_dict()
    assert "secret" not in json.dumps(body)
    path = tmp_path / "iceberg-catalog.json"
    path.write_text(json.dumps(body))
    loaded = load_catalog_file(path)
    assert loaded.to_dict() == body
    assert (loaded.jdbc_user, loaded.jdbc_password, loaded.s3.access_key_id) == (None, None, None)
    # The login comes from the environment, as the chart's Secret gives it.
    env = {"ICEBERG_JDBC_USER": "iceberg", "ICEBERG_JDBC_PASSWORD": "secret"}
    with_login = loaded.with_credentials_from_env(env)
    assert spark_conf(with_login)["spark.sql.catalog.lakehouse.jdbc.password"] == "secret"
    assert pyiceberg_properties(with_login)["uri"] == (
        "postgresql+psycopg2://iceberg:secret@pg:5432/iceberg"
    )
    assert "spark.sql.catalog.lakehouse.jdbc.password" not in spark_conf(loaded)


def test_a_rest_token_from_the_environment_reaches_both_engines() -> None:
    catalog = CatalogConfig(
        "lake", "rest", "s3://w/", uri="https://rest"
    ).with_credentials_from_env({"ICEBERG_REST_TOKEN": "t0k"})
    assert spark_conf(catalog)["spark.sql.catalog.lake.token"] == "t0k"
    assert pyiceberg_properties(catalog)["token"] == "t0k"


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            {"name": "l", "type": "hadoop", "warehouse": "s3://w/"},
            "catalog type 'hadoop' is not supported",
        ),
        ({"name": "l", "type": "rest", "warehouse": "s3://w/"}, "a rest catalog needs a uri"),
        ({"name": "l", "type": "glue", "warehouse": "/local"}, "must be an s3:// location"),
        (
            {"name": "l", "type": "glue", "warehouse": "s3://w/", "uir": "x"},
            "unknown catalog key(s) uir",
        ),
        ({"type": "glue", "warehouse": "s3://w/"}, "'name'"),
    ],
)
def test_a_bad_catalog_description_is_refused_naming_the_file(
    tmp_path: Path, body: dict[str, object], says: str
) -> None:
    path = tmp_path / "iceberg-catalog.json"
    path.write_text(json.dumps(body))
    with pytest.raises(ValueError, match="not a usable Iceberg catalog description") as error:
        load_catalog_file(path)
    assert str(path) in str(error.value)
    assert says in str(error.value)


def test_every_supported_type_builds_both_engines_settings() -> None:
    for kind in CATALOG_TYPES:
        uri = {"jdbc": "jdbc:postgresql://pg/iceberg", "glue": None}.get(kind, "thrift://hms:9083")
        if kind == "rest":
            uri = "https://rest"
        catalog = CatalogConfig("lake", kind, "s3://w/", uri=uri)  # type: ignore[arg-type]
        assert spark_conf(catalog)["spark.sql.catalog.lake.type"] == kind
        assert pyiceberg_properties(catalog)["type"] == ("sql" if kind == "jdbc" else kind)
