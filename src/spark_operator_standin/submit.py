"""Turn a SparkApplication spec into a spark-submit command line."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SubmitSettings:
    """How this stand-in maps a spec onto spark-submit on the machine it runs on."""

    spark_submit: str
    mode: str = "local"  # local | k8s
    local_master: str = "local[2]"
    k8s_master: str = "k8s://https://kubernetes.default.svc"
    #: image path prefix -> local path prefix (local mode runs the image's files from here)
    path_map: dict[str, str] = field(default_factory=dict)
    #: extra jars for local mode (the image has them on its classpath already)
    extra_jars: tuple[str, ...] = ()
    #: environment added to spark-submit's (see local_spark_env)
    env: dict[str, str] = field(default_factory=dict)


def local_spark_env() -> dict[str, str]:
    """SPARK_HOME and the Python of this process, so spark-submit from a pyspark install
    never depends on which python3 happens to be first on PATH."""
    import importlib.util
    import os
    import sys

    env = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.origin is not None:
        env["SPARK_HOME"] = os.path.dirname(spec.origin)
    return env


def _map_path(uri: str, settings: SubmitSettings) -> str:
    path = uri.removeprefix("local://")
    if settings.mode == "local":
        for image_prefix, local_prefix in settings.path_map.items():
            if path.startswith(image_prefix):
                return local_prefix + path[len(image_prefix) :]
        return path
    return uri if uri.startswith(("local://", "s3a://", "http")) else f"local://{path}"


def command(app: dict[str, Any], settings: SubmitSettings) -> list[str]:
    """spark-submit argv for `app` (a SparkApplication object as returned by the API)."""
    spec = app["spec"]
    meta = app["metadata"]
    if spec.get("type") not in ("Python", "Java", "Scala"):
        raise ValueError(f"unsupported application type {spec.get('type')!r}")
    conf: dict[str, str] = {str(k): str(v) for k, v in (spec.get("sparkConf") or {}).items()}
    driver = spec.get("driver") or {}
    executor = spec.get("executor") or {}
    argv = [settings.spark_submit, "--name", meta["name"]]
    if settings.mode == "local":
        argv += ["--master", settings.local_master, "--deploy-mode", "client"]
        jars = [
            *settings.extra_jars,
            *(_map_path(j, settings) for j in (spec.get("deps") or {}).get("jars", [])),
        ]
        if jars:
            argv += ["--jars", ",".join(jars)]
    else:
        argv += ["--master", settings.k8s_master, "--deploy-mode", "cluster"]
        conf.setdefault("spark.kubernetes.namespace", meta["namespace"])
        # The driver pod's name, as the operator sets it and reports in driverInfo.
        conf.setdefault("spark.kubernetes.driver.pod.name", f"{meta['name']}-driver")
        conf.setdefault("spark.kubernetes.container.image", spec["image"])
        if driver.get("serviceAccount"):
            conf.setdefault(
                "spark.kubernetes.authenticate.driver.serviceAccountName", driver["serviceAccount"]
            )
        if executor.get("instances"):
            conf.setdefault("spark.executor.instances", str(executor["instances"]))
        for role, part in (("driver", driver), ("executor", executor)):
            for key, value in (part.get("labels") or {}).items():
                conf.setdefault(f"spark.kubernetes.{role}.label.{key}", str(value))
            # env and envSecretKeyRefs as the operator passes them: plain values and
            # references to Secrets (the values never pass through this process).
            env_prefix = "spark.kubernetes.driverEnv." if role == "driver" else "spark.executorEnv."
            for item in part.get("env") or []:
                if "value" in item:
                    conf.setdefault(f"{env_prefix}{item['name']}", str(item["value"]))
            for env_name, ref in (part.get("envSecretKeyRefs") or {}).items():
                conf.setdefault(
                    f"spark.kubernetes.{role}.secretKeyRef.{env_name}",
                    f"{ref['name']}:{ref['key']}",
                )
    if driver.get("memory"):
        argv += ["--driver-memory", str(driver["memory"])]
    if executor.get("memory"):
        conf.setdefault("spark.executor.memory", str(executor["memory"]))
    if executor.get("cores"):
        conf.setdefault("spark.executor.cores", str(executor["cores"]))
    py_files = (spec.get("deps") or {}).get("pyFiles", [])
    if py_files:
        argv += ["--py-files", ",".join(_map_path(p, settings) for p in py_files)]
    for key, value in sorted(conf.items()):
        argv += ["--conf", f"{key}={value}"]
    if spec.get("type") != "Python" and spec.get("mainClass"):
        argv += ["--class", spec["mainClass"]]
    argv.append(_map_path(spec["mainApplicationFile"], settings))
    argv += [str(a) for a in spec.get("arguments") or []]
    return argv
