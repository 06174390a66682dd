"""airflow.cfg, the SparkApplication template, and the Job patterns (migration, pools,
secrets-init) that make `helm install --wait` and Argo CD behave the same."""

from __future__ import annotations

import configparser
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from orders_contract.catalog import CatalogConfig, pyiceberg_properties, spark_conf

pytestmark = pytest.mark.chart


def _cfg(chart: Any, values: dict[str, Any] | None = None) -> configparser.ConfigParser:
    objects = chart.render(values)
    text = chart.one(objects, "ConfigMap", chart.name("config"))["data"]["airflow.cfg"]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    return parser


def test_airflow_cfg_defaults(chart: Any) -> None:
    cfg = _cfg(chart)
    assert cfg["core"]["executor"] == "CeleryExecutor,KubernetesExecutor"
    assert (
        cfg["core"]["xcom_backend"]
        == "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
    )
    assert cfg["common.io"]["xcom_objectstorage_path"] == "s3://aws_default@orders-etl/xcom"
    assert cfg["common.io"]["xcom_objectstorage_threshold"] == "1048576"
    assert (
        cfg["core"]["execution_api_server_url"] == "http://oe-orders-etl-api-server:8080/execution/"
    )
    assert cfg["kubernetes_executor"]["namespace"] == chart.namespace
    assert cfg["kubernetes_executor"]["worker_container_tag"] == "3.3.2"
    assert cfg["openlineage"]["disabled"] == "True"
    assert json.loads(cfg["openlineage"]["transport"]) == {"type": "console"}
    assert cfg["logging"]["remote_logging"] == "False"
    assert not cfg.has_section("secrets")
    for section in cfg.sections():
        for key in cfg[section]:
            assert key not in (
                "sql_alchemy_conn",
                "fernet_key",
                "secret_key",
                "jwt_secret",
                "broker_url",
            )


def test_airflow_cfg_features(chart: Any) -> None:
    cfg = _cfg(
        chart,
        {
            "airflow": {
                "logging": {"remote": True, "remoteBaseLogFolder": "s3://logs/airflow"},
                "openlineage": {
                    "enabled": True,
                    "transport": {"type": "http", "url": "http://marquez:5000"},
                },
                "secretsBackend": {
                    "backend": "airflow.providers.hashicorp.secrets.vault.VaultBackend",
                    "kwargs": {"mount_point": "airflow"},
                },
                "xcom": {"threshold": 0},
                "config": {"core": {"parallelism": 64, "load_examples": "True"}},
            }
        },
    )
    assert cfg["logging"]["remote_logging"] == "True"
    assert cfg["logging"]["remote_base_log_folder"] == "s3://logs/airflow"
    assert cfg["logging"]["remote_log_conn_id"] == "aws_default"
    assert cfg["openlineage"]["disabled"] == "False"
    assert json.loads(cfg["openlineage"]["transport"])["url"] == "http://marquez:5000"
    assert cfg["secrets"]["backend"].endswith("VaultBackend")
    assert json.loads(cfg["secrets"]["backend_kwargs"]) == {"mount_point": "airflow"}
    assert cfg["common.io"]["xcom_objectstorage_threshold"] == "0"
    # airflow.config wins over the chart's own settings and adds new ones.
    assert cfg["core"]["parallelism"] == "64"
    assert cfg["core"]["load_examples"] == "True"


def test_openlineage_transport_from_secret(chart: Any) -> None:
    values = {"airflow": {"openlineage": {"enabled": True, "transportSecret": {"name": "ol"}}}}
    assert "transport" not in _cfg(chart, values)["openlineage"]
    scheduler = chart.one(chart.render(values), "Deployment", chart.name("scheduler"))
    env = {e["name"]: e for e in scheduler["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AIRFLOW__OPENLINEAGE__TRANSPORT"]["valueFrom"]["secretKeyRef"] == {
        "name": "ol",
        "key": "transport",
    }


def test_connections_as_env(chart: Any) -> None:
    values = {
        "airflow": {
            "connections": [
                {"id": "clickhouse_default", "secretRef": {"name": "conns", "key": "ch"}},
                {"id": "aws-default", "json": {"conn_type": "aws"}},
            ]
        }
    }
    worker = chart.one(chart.render(values), "StatefulSet", chart.name("worker"))
    env = {e["name"]: e for e in worker["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AIRFLOW_CONN_CLICKHOUSE_DEFAULT"]["valueFrom"]["secretKeyRef"] == {
        "name": "conns",
        "key": "ch",
    }
    assert json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"]["value"]) == {"conn_type": "aws"}


def test_sparkapplication_template(chart: Any) -> None:
    objects = chart.render(
        {
            "spark": {
                "jobsNamespace": "spark-jobs",
                "sparkConf": {"spark.sql.shuffle.partitions": "8"},
            },
            "s3": {"endpoint": "http://minio:9000", "pathStyleAccess": True},
        }
    )
    cm = chart.one(objects, "ConfigMap", chart.name("spark-template"))
    assert cm["data"]["jobs-namespace"] == "spark-jobs"  # what the operator must watch
    app = yaml.safe_load(cm["data"]["sparkapplication.yaml"])
    assert app["apiVersion"] == "sparkoperator.k8s.io/v1beta2"
    assert app["kind"] == "SparkApplication"
    assert app["metadata"]["namespace"] == "spark-jobs"
    spec = app["spec"]
    assert spec["image"] == "orders-etl/spark:3.5.9"
    assert spec["sparkVersion"] == "3.5.9"
    assert spec["type"] == "Python"
    assert spec["mode"] == "cluster"
    assert spec["mainApplicationFile"] == "local:///opt/orders-etl/spark-jobs/main.py"
    assert spec["driver"]["serviceAccount"] == chart.name("spark-driver")
    assert (spec["driver"]["cores"], spec["driver"]["memory"]) == (1, "1g")
    assert (spec["executor"]["instances"], spec["executor"]["memory"]) == (2, "2g")
    # The template's sparkConf is the user's; the catalog travels as data beside it, and
    # the transform task adds the settings orders_contract.catalog builds from it.
    assert spec["sparkConf"] == {"spark.sql.shuffle.partitions": "8"}
    assert not any(k.startswith("spark.sql.catalog") for k in spec["sparkConf"])
    conf = spark_conf(CatalogConfig.from_dict(json.loads(cm["data"]["iceberg-catalog.json"])))
    assert conf["spark.sql.catalog.lakehouse"] == "org.apache.iceberg.spark.SparkCatalog"
    assert conf["spark.sql.catalog.lakehouse.type"] == "rest"
    assert conf["spark.sql.catalog.lakehouse.uri"] == "http://iceberg-rest:8181"
    assert conf["spark.sql.catalog.lakehouse.warehouse"] == "s3://orders-etl/warehouse"
    assert conf["spark.sql.catalog.lakehouse.s3.endpoint"] == "http://minio:9000"
    assert conf["spark.sql.catalog.lakehouse.s3.path-style-access"] == "true"
    assert all(isinstance(v, str) for v in conf.values())


def test_glue_catalog(chart: Any) -> None:
    objects = chart.render(
        {"spark": {"catalog": {"type": "glue", "uri": "", "properties": {"glue.id": "1234"}}}}
    )
    cm = chart.one(objects, "ConfigMap", chart.name("spark-template"))
    catalog = CatalogConfig.from_dict(json.loads(cm["data"]["iceberg-catalog.json"]))
    conf = spark_conf(catalog)
    assert conf["spark.sql.catalog.lakehouse.type"] == "glue"
    assert conf["spark.sql.catalog.lakehouse.glue.id"] == "1234"
    assert "spark.sql.catalog.lakehouse.uri" not in conf
    assert pyiceberg_properties(catalog)["type"] == "glue"


def test_the_catalog_file_and_its_login_reach_every_process_that_opens_it(chart: Any) -> None:
    """The Airflow pods mount iceberg-catalog.json where the pipeline config looks for it
    and, with spark.catalog.existingSecret, get the login; so does the Spark driver (not
    the executors, which never open the catalog)."""
    from orders_etl.config import parse_config

    objects = chart.render({"spark": {"catalog": {"existingSecret": "lake-login"}}})
    default_path = parse_config().iceberg.catalog_file
    assert default_path == "/opt/airflow/chart-config/iceberg-catalog.json"
    worker = chart.one(objects, "StatefulSet", chart.name("worker"))
    pod = worker["spec"]["template"]["spec"]
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "config"]
    assert mount["mountPath"] == str(Path(default_path).parent)
    [volume] = [v for v in pod["volumes"] if v["name"] == "config"]
    paths = {
        i["path"]
        for src in volume["projected"]["sources"]
        for i in src["configMap"].get("items", [])
    }
    assert Path(default_path).name in paths
    logins = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in pod["containers"][0]["env"]
        if e["name"].startswith("ICEBERG_")
    }
    assert set(logins) == {"ICEBERG_JDBC_USER", "ICEBERG_JDBC_PASSWORD", "ICEBERG_REST_TOKEN"}
    assert all(ref["name"] == "lake-login" and ref["optional"] for ref in logins.values())
    cm = chart.one(objects, "ConfigMap", chart.name("spark-template"))
    app = yaml.safe_load(cm["data"]["sparkapplication.yaml"])

    def env_names(role: str) -> set[str]:
        [container] = app["spec"][role]["template"]["spec"]["containers"][:1]
        return {e["name"] for e in container["env"]}

    assert {"ICEBERG_JDBC_USER", "ICEBERG_JDBC_PASSWORD"} <= env_names("driver")
    assert not any(n.startswith("ICEBERG_") for n in env_names("executor"))
    without = chart.render({})
    worker = chart.one(without, "StatefulSet", chart.name("worker"))
    env = worker["spec"]["template"]["spec"]["containers"][0]["env"]
    assert not any(e["name"].startswith("ICEBERG_") for e in env)


def _job(objects: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    (job,) = [o for o in objects if o["kind"] == "Job" and o["metadata"]["name"].startswith(prefix)]
    return job


def test_migration_job_is_a_plain_resource_named_by_content(chart: Any) -> None:
    objects = chart.render()
    job = _job(objects, chart.name("migrate"))
    annotations = job["metadata"].get("annotations", {})
    assert not any(k.startswith("helm.sh/hook") for k in annotations), (
        "no helm hook (--wait deadlock)"
    )
    assert annotations["argocd.argoproj.io/sync-wave"] == "-1"
    assert "ttlSecondsAfterFinished" not in job["spec"]
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "airflow",
        "db",
        "migrate",
    ]
    same = _job(chart.render({"workers": {"replicas": 5}}), chart.name("migrate"))
    assert same["metadata"]["name"] == job["metadata"]["name"], "unrelated changes keep the Job"
    upgraded = _job(chart.render({"images": {"airflow": {"tag": "3.3.3"}}}), chart.name("migrate"))
    assert upgraded["metadata"]["name"] != job["metadata"]["name"], "a new image gets a new Job"


def test_switching_spark_off_keeps_the_jobs(chart: Any) -> None:
    """The Jobs' names hash their pod templates; those must not carry what only the
    Airflow components use (the SparkApplication template), or Argo CD would prune and
    re-run the migration when Spark is switched off (seen in the GitOps prune test)."""
    on, off = chart.render(), chart.render({"spark": {"enabled": False}})
    for component in ("migrate", "bootstrap"):
        before = _job(on, chart.name(component))["metadata"]["name"]
        assert _job(off, chart.name(component))["metadata"]["name"] == before, component


def test_pools_bootstrap_job(chart: Any) -> None:
    objects = chart.render()
    cm = chart.one(objects, "ConfigMap", chart.name("bootstrap"))
    assert json.loads(cm["data"]["pools.json"]) == {
        "spark_submission_pool": {
            "slots": 4,
            "description": "Concurrent SparkApplication submissions",
            "include_deferred": True,
        }
    }
    job = _job(objects, chart.name("bootstrap"))
    spec = job["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["name"] == "wait-for-migrations"
    assert spec["containers"][0]["command"][:3] == ["airflow", "pools", "import"]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "1"
    more = _job(
        chart.render({"airflow": {"pools": {"spark_submission_pool": {"slots": 8}}}}),
        chart.name("bootstrap"),
    )
    assert more["metadata"]["name"] != job["metadata"]["name"]


def test_secrets_init_job(chart: Any) -> None:
    objects = chart.render()
    job = _job(objects, chart.name("secrets-init"))
    env = {e["name"]: e["value"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SECRET_NAME"] == chart.name("generated")
    assert json.loads(env["SECRET_KEYS"]) == [
        "fernet-key",
        "api-secret-key",
        "jwt-secret",
        "redis-password",
        "admin-password",  # the FAB admin's, read by the create-user Job
    ]
    assert job["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"] == "-2"
    script = chart.one(objects, "ConfigMap", chart.name("secrets-init"))["data"][
        "generate_secrets.py"
    ]
    assert script == (chart.path / "files" / "generate_secrets.py").read_text()
    no_redis = chart.render(
        {"airflow": {"executor": "KubernetesExecutor"}, "redis": {"enabled": False}}
    )
    env2 = {
        e["name"]: e["value"]
        for e in _job(no_redis, chart.name("secrets-init"))["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert "redis-password" not in json.loads(env2["SECRET_KEYS"])
    # An admin password from the user's own Secret is not generated.
    own = chart.render({"auth": {"admin": {"existingSecret": "admin-pw"}}})
    env3 = {
        e["name"]: e["value"]
        for e in _job(own, chart.name("secrets-init"))["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    assert "admin-password" not in json.loads(env3["SECRET_KEYS"])


def test_sync_waves_order_dependencies(chart: Any) -> None:
    objects = chart.render()

    def wave(o: dict[str, Any]) -> int:
        return int(o["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-wave", "0"))

    for o in objects:
        if o["kind"] in ("ServiceAccount", "Role", "RoleBinding", "ConfigMap"):
            assert wave(o) == -3, o["metadata"]["name"]
        if o["kind"] in ("Deployment", "StatefulSet"):
            assert wave(o) == 0
    assert (
        wave(_job(objects, chart.name("secrets-init")))
        < wave(_job(objects, chart.name("migrate")))
        < 0
    )


# Runs in a subprocess: importing Airflow has side effects (AIRFLOW_HOME) and takes seconds.
_KNOWN_OPTIONS = """
import configparser, json, sys
from airflow.configuration import conf
conf.load_providers_configuration()
unknown = []
for name, text in json.load(sys.stdin).items():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    for section in parser.sections():
        options = conf.configuration_description.get(section, {}).get("options", {})
        unknown += [f"{name}: [{section}] {key}" for key in parser[section] if key not in options]
print(json.dumps(unknown))
"""


def test_every_rendered_option_is_a_real_airflow_option(chart: Any, tmp_path: Path) -> None:
    """airflow.cfg from every scenario against the option descriptions of the Airflow
    and providers installed in the venv (the versions the images pin)."""
    rendered = {}
    for values_file in chart.scenarios:
        objects = chart.render(values_files=[values_file])
        rendered[values_file.name] = chart.one(objects, "ConfigMap", chart.name("config"))["data"][
            "airflow.cfg"
        ]
    result = subprocess.run(
        [sys.executable, "-c", _KNOWN_OPTIONS],
        input=json.dumps(rendered),
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "AIRFLOW_HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_spark_pod_placement_goes_into_the_pod_templates(chart: Any) -> None:
    """Placement values reach the driver and executor pods through their pod templates
    (podTemplateFile), whether or not the spark-operator's webhook runs."""
    toleration = {"key": "spark", "operator": "Exists", "effect": "NoSchedule"}
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["spark"]}]}
                ]
            }
        }
    }
    volume = {"name": "scratch", "emptyDir": {"sizeLimit": "2Gi"}}
    mount = {"name": "scratch", "mountPath": "/scratch"}
    role_values = {
        "nodeSelector": {"pool": "spark"},
        "tolerations": [toleration],
        "affinity": affinity,
        "priorityClassName": "batch",
        "annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"},
        "extraVolumes": [volume],
        "extraVolumeMounts": [mount],
    }
    objects = chart.render(
        {"spark": {"driver": role_values, "executor": {**role_values, "priorityClassName": "low"}}}
    )
    app = yaml.safe_load(
        chart.one(objects, "ConfigMap", chart.name("spark-template"))["data"][
            "sparkapplication.yaml"
        ]
    )
    for role, priority in (("driver", "batch"), ("executor", "low")):
        template = app["spec"][role]["template"]
        pod = template["spec"]
        assert pod["nodeSelector"] == {"pool": "spark"}
        assert pod["tolerations"] == [toleration]
        assert pod["affinity"] == affinity
        assert pod["priorityClassName"] == priority
        assert pod["volumes"] == [volume]
        assert pod["containers"][0]["volumeMounts"] == [mount]
        assert template["metadata"]["annotations"] == role_values["annotations"]
        for webhook_only in ("nodeSelector", "tolerations", "affinity", "volumeMounts"):
            assert webhook_only not in app["spec"][role]
    defaults = yaml.safe_load(
        chart.one(chart.render(), "ConfigMap", chart.name("spark-template"))["data"][
            "sparkapplication.yaml"
        ]
    )
    for role in ("driver", "executor"):
        pod = defaults["spec"][role]["template"]["spec"]
        assert not {
            "nodeSelector",
            "tolerations",
            "affinity",
            "priorityClassName",
            "volumes",
        } & set(pod)


def _spark_app(chart: Any, values: dict[str, Any]) -> dict[str, Any]:
    data = chart.one(chart.render(values), "ConfigMap", chart.name("spark-template"))["data"]
    app: dict[str, Any] = yaml.safe_load(data["sparkapplication.yaml"])
    return app


def test_spark_pods_take_sidecars_init_containers_labels_env_and_lifecycle(chart: Any) -> None:
    """The extension points every other workload has, on the Spark pods too: in the pod
    templates (Spark keeps a template's other containers beside the one it fills in)."""
    sidecar = {"name": "{{ .Release.Name }}-proxy", "image": "proxy:1"}
    init = {"name": "fetch", "image": "fetch:1", "command": ["true"]}
    env = {"name": "TZ", "value": "UTC"}
    lifecycle = {"preStop": {"exec": {"command": ["sleep", "5"]}}}
    role_values = {
        "extraContainers": [sidecar],
        "extraInitContainers": [init],
        "podLabels": {"team": "data"},
        "extraEnv": [env],
        "lifecycle": lifecycle,
    }
    app = _spark_app(chart, {"spark": {"driver": role_values, "executor": role_values}})
    for role, container in (
        ("driver", "spark-kubernetes-driver"),
        ("executor", "spark-kubernetes-executor"),
    ):
        template = app["spec"][role]["template"]
        main, *sidecars = template["spec"]["containers"]
        assert main["name"] == container, "Spark fills in the first, named container"
        assert env in main["env"]
        assert main["env"][0]["name"] == "AWS_REGION"
        assert main["lifecycle"] == lifecycle
        assert sidecars == [{"name": f"{chart.release}-proxy", "image": "proxy:1"}]
        assert template["spec"]["initContainers"] == [init]
        assert template["metadata"]["labels"] == {"team": "data"}
    defaults = _spark_app(chart, {})
    for role in ("driver", "executor"):
        template = defaults["spec"][role]["template"]
        assert len(template["spec"]["containers"]) == 1
        assert "initContainers" not in template["spec"]
        assert "lifecycle" not in template["spec"]["containers"][0]
        assert "labels" not in template.get("metadata", {})


def test_spark_pods_fall_back_to_global_placement(chart: Any) -> None:
    toleration = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    placement = {"nodeSelector": {"pool": "data"}, "tolerations": [toleration]}
    app = _spark_app(chart, {"global": placement, "spark": {"executor": {"tolerations": []}}})
    for role in ("driver", "executor"):
        pod = app["spec"][role]["template"]["spec"]
        assert pod["nodeSelector"] == {"pool": "data"}
        assert pod["tolerations"] == [toleration]
    own = _spark_app(
        chart, {"global": placement, "spark": {"driver": {"nodeSelector": {"a": "b"}}}}
    )
    assert own["spec"]["driver"]["template"]["spec"]["nodeSelector"] == {"a": "b"}
