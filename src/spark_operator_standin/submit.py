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


_JVM_UNITS = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}


def jvm_memory_mib(value: str) -> int:
    """MiB in a Spark/JVM memory string: 512m, 1g, 1536M, 2gb (no suffix: MiB, as Spark
    reads spark.driver.memory)."""
    text = str(value).strip().lower().removesuffix("b")
    unit = text[-1] if text and text[-1] in _JVM_UNITS else "m"
    number = text[:-1] if text and text[-1] in _JVM_UNITS else text
    if not number.isdigit():
        raise ValueError(f"not a Spark memory size: {value!r} (e.g. 512m, 2g)")
    return max(1, int(int(number) * _JVM_UNITS[unit]))


def local_jvm_memory(driver: dict[str, Any], executor: dict[str, Any]) -> str:
    """The memory of the one local-mode JVM standing in for the driver and the executors:
    driver.memory + executor.instances x executor.memory ('' when the spec gives none)."""
    total = 0
    if driver.get("memory"):
        total += jvm_memory_mib(driver["memory"])
    if executor.get("memory"):
        total += int(executor.get("instances") or 1) * jvm_memory_mib(executor["memory"])
    return f"{total}m" if total else ""


#: SparkPodSpec field -> Spark conf key (k8s mode), as spark-operator v2 maps them.
#: executor.cores and the memories are passed below for both modes.
_RESOURCE_CONF = {
    "coreRequest": "spark.kubernetes.{role}.request.cores",
    "coreLimit": "spark.kubernetes.{role}.limit.cores",
    "memoryOverhead": "spark.{role}.memoryOverhead",
}


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
            # The spec's pod resources, mapped to the Spark conf keys the operator sets.
            for field_name, key in _RESOURCE_CONF.items():
                if part.get(field_name) not in (None, ""):
                    conf.setdefault(key.format(role=role), str(part[field_name]))
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
    if settings.mode == "local":
        # One JVM does the driver's and the executors' work: it gets the memory of all
        # of them (with the driver's alone, a 1M-event batch ran out of execution memory).
        jvm = local_jvm_memory(driver, executor)
        if jvm:
            argv += ["--driver-memory", jvm]
    elif driver.get("memory"):
        argv += ["--driver-memory", str(driver["memory"])]
    if executor.get("memory"):
        conf.setdefault("spark.executor.memory", str(executor["memory"]))
    if executor.get("cores"):
        conf.setdefault("spark.executor.cores", str(executor["cores"]))
    if settings.mode != "local" and driver.get("cores"):
        conf.setdefault("spark.driver.cores", str(driver["cores"]))
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
