"""Turn a SparkApplication spec into a spark-submit command line.

k8s mode submits what the operator submits: `operator_arguments` follows the operator's
`buildSparkSubmitArgs` (internal/controller/sparkapplication/submission.go, v2.5), option
by option and in its order (a later `--conf` of the same key wins, in spark-submit as
there), and the application's own `driver.template` / `executor.template` are written to
files with the application as their owner and passed as `podTemplateFile`. Local mode
runs the job in client mode on this machine and maps only what a single JVM can use.
"""

from __future__ import annotations

import copy
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spark_operator_standin.driver_pod import DRIVER_CONTAINER, EXECUTOR_CONTAINER
from spark_operator_standin.states import driver_pod_name

#: Labels the operator puts on the driver and executor pods (pkg/common/spark.go).
LABEL_APP_NAME = "sparkoperator.k8s.io/app-name"
LABEL_LAUNCHED = "sparkoperator.k8s.io/launched-by-spark-operator"
LABEL_MUTATED = "sparkoperator.k8s.io/mutated-by-spark-operator"
LABEL_SUBMISSION_ID = "sparkoperator.k8s.io/submission-id"


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
    #: k8s mode: where the pod template files go, one folder per submission (the
    #: operator's /tmp/spark/<submissionID>/)
    template_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "spark")


#: The JVM options of a local-mode run: one JVM that lives for one batch, on the machine
#: that also runs the whole platform. The C2 compiler's threads cost more than its code
#: earns in a run this short: with C1 only, four of the Spark job's tests used 24 % less
#: CPU (191 -> 145 s, two runs each, 2026-12-04) and no more wall time. (Not for the
#: chart's SparkApplications: a long batch on a cluster wants C2.) C1 only also shrinks
#: the default code cache to 48 MB, which the job filled 40-70 s into its longer runs (a
#: million events, grown tables: 4 of 36 runs on the benchmark platform, 2026-12-07), after
#: which the JVM stops compiling; it gets the 240 MB a tiered JVM reserves by default.
LOCAL_JVM_OPTIONS = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=240m"


def local_spark_env() -> dict[str, str]:
    """SPARK_HOME and the Python of this process, so spark-submit from a pyspark install
    never depends on which python3 happens to be first on PATH; the local JVM's options
    (LOCAL_JVM_OPTIONS, through SPARK_SUBMIT_OPTS: in client mode the spark-submit JVM is
    the driver)."""
    import importlib.util
    import os
    import sys

    env = {
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
        "SPARK_SUBMIT_OPTS": " ".join(
            o for o in (os.environ.get("SPARK_SUBMIT_OPTS"), LOCAL_JVM_OPTIONS) if o
        ),
    }
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


def _version_below_3(version: str | None) -> bool:
    try:
        return int(str(version or "").split(".")[0]) < 3
    except ValueError:
        return True  # CompareSemanticVersion of a non-version: treated as older


def write_pod_templates(
    app: dict[str, Any], submission_id: str, template_dir: Path
) -> dict[str, Path]:
    """driverPodTemplateOption / executorPodTemplateOption: each role's `template` (or a
    bare one naming the container) with the application as owner (the driver's as its
    controller, the executors' not), written to <template_dir>/<submissionID>/."""
    meta, spec = app["metadata"], app["spec"]
    owner = {
        "apiVersion": app.get("apiVersion", "sparkoperator.k8s.io/v1beta2"),
        "kind": "SparkApplication",
        "name": meta["name"],
        "uid": meta.get("uid", ""),
    }
    folder = template_dir / submission_id
    folder.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for role, container, controller in (
        ("driver", DRIVER_CONTAINER, True),
        ("executor", EXECUTOR_CONTAINER, False),
    ):
        template = copy.deepcopy((spec.get(role) or {}).get("template")) or {
            "spec": {"containers": [{"name": container}]}
        }
        reference = {
            **owner,
            **({"controller": True, "blockOwnerDeletion": True} if controller else {}),
        }
        owners = template.setdefault("metadata", {}).setdefault("ownerReferences", [])
        if reference not in owners:
            owners.append(reference)
        path = folder / f"{role}-pod-template.yaml"
        path.write_text(json.dumps(template))  # JSON is YAML; Spark reads either
        paths[role] = path
    return paths


def operator_arguments(
    app: dict[str, Any], master: str, submission_id: str, templates: dict[str, Path]
) -> list[str]:
    """buildSparkSubmitArgs, option by option (spark-submit's path not included).

    Not mapped (refused, so nothing is silently dropped): `spark-local-dir-*` volumes
    (driverVolumeMountsOption), `driver.secrets` / `executor.secrets` of the GCP and Hadoop
    types' extra env, batch schedulers, web UI services and ingresses, monitoring."""
    meta, spec = app["metadata"], app["spec"]
    driver, executor = spec.get("driver") or {}, spec.get("executor") or {}
    args: list[str] = ["--master", master, "--deploy-mode", str(spec.get("mode") or "cluster")]

    def conf(key: str, value: Any) -> None:
        args.extend(["--conf", f"{key}={value}"])

    if spec.get("mainClass"):
        args += ["--class", str(spec["mainClass"])]
    args += ["--name", meta["name"]]
    deps = spec.get("deps") or {}
    for option, key in (
        ("--jars", "jars"),
        ("--packages", "packages"),
        ("--exclude-packages", "excludePackages"),
        ("--repositories", "repositories"),
        ("--py-files", "pyFiles"),
        ("--files", "files"),
        ("--archives", "archives"),
    ):
        if deps.get(key):
            args += [option, ",".join(str(d) for d in deps[key])]
    conf("spark.kubernetes.namespace", meta["namespace"])
    if spec.get("image"):
        conf("spark.kubernetes.container.image", spec["image"])
    if spec.get("imagePullPolicy"):
        conf("spark.kubernetes.container.image.pullPolicy", spec["imagePullPolicy"])
    if spec.get("imagePullSecrets"):
        conf("spark.kubernetes.container.image.pullSecrets", ",".join(spec["imagePullSecrets"]))
    if spec.get("pythonVersion"):
        conf("spark.kubernetes.pyspark.pythonVersion", spec["pythonVersion"])
    if spec.get("memoryOverheadFactor"):
        conf("spark.kubernetes.memoryOverheadFactor", spec["memoryOverheadFactor"])
    conf("spark.kubernetes.submission.waitAppCompletion", "false")
    for key, value in (spec.get("sparkConf") or {}).items():
        if key != "spark.kubernetes.driver.pod.name":
            conf(key, value)
    for key, value in (spec.get("hadoopConf") or {}).items():
        conf(f"spark.hadoop.{key}", value)
    conf("spark.kubernetes.driver.podTemplateFile", templates["driver"])
    conf("spark.kubernetes.driver.podTemplateContainerName", DRIVER_CONTAINER)
    conf("spark.kubernetes.driver.pod.name", driver_pod_name(app))
    old_spark = _version_below_3(spec.get("sparkVersion"))
    for role, part in (("driver", driver), ("executor", executor)):
        if role == "executor":
            conf("spark.kubernetes.executor.podTemplateFile", templates["executor"])
            conf("spark.kubernetes.executor.podTemplateContainerName", EXECUTOR_CONTAINER)
        label = f"spark.kubernetes.{role}.label."
        conf(label + LABEL_APP_NAME, meta["name"])
        conf(label + LABEL_LAUNCHED, "true")
        if old_spark or part.get("template") is None:
            conf(label + LABEL_MUTATED, "true")  # left to the operator's webhook
        conf(label + LABEL_SUBMISSION_ID, submission_id)
        if role == "executor" and part.get("instances") is not None:
            conf("spark.executor.instances", part["instances"])
        image = part.get("image") or spec.get("image")
        if image:
            conf(f"spark.kubernetes.{role}.container.image", image)
        if part.get("cores") is not None:
            conf(f"spark.{role}.cores", part["cores"])
        if part.get("coreRequest") is not None:
            conf(f"spark.kubernetes.{role}.request.cores", part["coreRequest"])
        if part.get("coreLimit") is not None:
            conf(f"spark.kubernetes.{role}.limit.cores", part["coreLimit"])
        if part.get("memory") is not None:
            conf(f"spark.{role}.memory", part["memory"])
        if part.get("memoryOverhead") is not None:
            conf(f"spark.{role}.memoryOverhead", part["memoryOverhead"])
        if role == "driver":
            if part.get("serviceAccount") is not None:
                conf(
                    "spark.kubernetes.authenticate.driver.serviceAccountName",
                    part["serviceAccount"],
                )
            if part.get("javaOptions") is not None:
                conf("spark.driver.extraJavaOptions", part["javaOptions"])
            if part.get("kubernetesMaster") is not None:
                conf("spark.kubernetes.driver.master", part["kubernetesMaster"])
        else:
            if part.get("serviceAccount") is not None:
                conf(
                    "spark.kubernetes.authenticate.executor.serviceAccountName",
                    part["serviceAccount"],
                )
            if part.get("deleteOnTermination") is not None:
                conf(
                    "spark.kubernetes.executor.deleteOnTermination",
                    str(part["deleteOnTermination"]).lower(),
                )
        for key, value in (meta.get("labels") or {}).items():
            if not key.startswith("kueue.x-k8s.io/"):
                conf(label + key, value)
        for key, value in (part.get("labels") or {}).items():
            conf(label + key, value)
        for key, value in (part.get("annotations") or {}).items():
            conf(f"spark.kubernetes.{role}.annotation.{key}", value)
        if role == "driver":
            for key, value in (part.get("serviceLabels") or {}).items():
                conf(f"spark.kubernetes.driver.service.label.{key}", value)
            for key, value in (part.get("serviceAnnotations") or {}).items():
                conf(f"spark.kubernetes.driver.service.annotation.{key}", value)
        for key, ref in (part.get("envSecretKeyRefs") or {}).items():
            conf(f"spark.kubernetes.{role}.secretKeyRef.{key}", f"{ref['name']}:{ref['key']}")
        if role == "executor" and part.get("javaOptions") is not None:
            conf("spark.executor.extraJavaOptions", part["javaOptions"])
        env_prefix = "spark.kubernetes.driverEnv." if role == "driver" else "spark.executorEnv."
        for key, value in (part.get("envVars") or {}).items():
            conf(env_prefix + key, value)
        for secret in part.get("secrets") or []:
            if secret.get("secretType") in ("GCPServiceAccount", "HadoopDelegationToken"):
                raise ValueError(f"{role}.secrets of type {secret['secretType']} are not supported")
            conf(f"spark.kubernetes.{role}.secrets.{secret['name']}", secret["path"])
        if any(
            m.get("name", "").startswith("spark-local-dir-") for m in part.get("volumeMounts") or []
        ):
            raise ValueError(f"{role}.volumeMounts of spark-local-dir-* volumes are not supported")
    for key, value in (spec.get("nodeSelector") or {}).items():
        conf(f"spark.kubernetes.node.selector.{key}", value)
    dynamic = spec.get("dynamicAllocation") or {}
    if dynamic.get("enabled"):
        conf("spark.dynamicAllocation.enabled", "true")
        for field_name, key in (
            ("initialExecutors", "initialExecutors"),
            ("minExecutors", "minExecutors"),
            ("maxExecutors", "maxExecutors"),
        ):
            if dynamic.get(field_name) is not None:
                conf(f"spark.dynamicAllocation.{key}", dynamic[field_name])
        tracking = dynamic.get("shuffleTrackingEnabled")
        conf("spark.dynamicAllocation.shuffleTracking.enabled", str(tracking is not False).lower())
        if dynamic.get("shuffleTrackingTimeout") is not None:
            conf(
                "spark.dynamicAllocation.shuffleTracking.timeout", dynamic["shuffleTrackingTimeout"]
            )
    if spec.get("proxyUser"):
        args += ["--proxy-user", str(spec["proxyUser"])]
    if spec.get("mainApplicationFile"):
        args.append(str(spec["mainApplicationFile"]))
    args += [str(a) for a in spec.get("arguments") or []]
    return args


def command(
    app: dict[str, Any],
    settings: SubmitSettings,
    submission_id: str = "",
    templates: dict[str, Path] | None = None,
) -> list[str]:
    """spark-submit argv for `app` (a SparkApplication object as returned by the API).

    k8s mode: `operator_arguments`; `templates` are the files `write_pod_templates` wrote
    for this submission (written here, under settings.template_dir, when not given)."""
    spec = app["spec"]
    meta = app["metadata"]
    if spec.get("type") not in ("Python", "Java", "Scala"):
        raise ValueError(f"unsupported application type {spec.get('type')!r}")
    if settings.mode != "local":
        if templates is None:
            templates = write_pod_templates(
                app, submission_id or "unsubmitted", settings.template_dir
            )
        return [
            settings.spark_submit,
            *operator_arguments(app, settings.k8s_master, submission_id, templates),
        ]
    conf: dict[str, str] = {str(k): str(v) for k, v in (spec.get("sparkConf") or {}).items()}
    driver = spec.get("driver") or {}
    executor = spec.get("executor") or {}
    argv = [settings.spark_submit, "--name", meta["name"]]
    argv += ["--master", settings.local_master, "--deploy-mode", "client"]
    jars = [
        *settings.extra_jars,
        *(_map_path(j, settings) for j in (spec.get("deps") or {}).get("jars", [])),
    ]
    if jars:
        argv += ["--jars", ",".join(jars)]
    # One JVM does the driver's and the executors' work: it gets the memory of all
    # of them (with the driver's alone, a 1M-event batch ran out of execution memory).
    jvm = local_jvm_memory(driver, executor)
    if jvm:
        argv += ["--driver-memory", jvm]
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
