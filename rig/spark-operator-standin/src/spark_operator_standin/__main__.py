"""python -m spark_operator_standin --mode local|k8s [--namespace NS] ..."""

from __future__ import annotations

import argparse
import logging
import shutil
import signal
import sys
from pathlib import Path
from types import FrameType

from kubernetes import client, config

from spark_operator_standin.controller import Controller
from spark_operator_standin.submit import SubmitSettings, local_spark_env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m spark_operator_standin", description=__doc__)
    parser.add_argument("--mode", choices=["local", "k8s"], default="local")
    parser.add_argument("--kubeconfig", help="omit to use the in-cluster service account")
    parser.add_argument("--namespace", help="watch one namespace (default: all)")
    beside_python = Path(sys.executable).parent / "spark-submit"  # a pyspark install's
    parser.add_argument(
        "--spark-submit",
        default=str(beside_python)
        if beside_python.exists()
        else shutil.which("spark-submit") or "spark-submit",
    )
    parser.add_argument("--local-master", default="local[2]")
    parser.add_argument("--k8s-master", default="k8s://https://kubernetes.default.svc")
    parser.add_argument(
        "--path-map",
        action="append",
        default=[],
        metavar="IMAGE=LOCAL",
        help="local mode: run files under the image path IMAGE from LOCAL",
    )
    parser.add_argument(
        "--extra-jars-dir", type=Path, help="local mode: add every jar in this directory to --jars"
    )
    parser.add_argument("--log-dir", type=Path, default=Path("spark-standin-logs"))
    parser.add_argument("--max-concurrent", type=int, default=1)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    if args.kubeconfig:
        config.load_kube_config(config_file=args.kubeconfig)
    else:
        config.load_incluster_config()
    path_map = dict(item.split("=", 1) for item in args.path_map)
    jars = (
        tuple(str(j) for j in sorted(args.extra_jars_dir.glob("*.jar")))
        if args.extra_jars_dir
        else ()
    )
    settings = SubmitSettings(
        spark_submit=args.spark_submit,
        mode=args.mode,
        local_master=args.local_master,
        k8s_master=args.k8s_master,
        path_map=path_map,
        extra_jars=jars,
        env=local_spark_env() if args.mode == "local" else {},
    )
    controller = Controller(
        client.CustomObjectsApi(),
        settings,
        args.log_dir,
        namespace=args.namespace,
        max_concurrent=args.max_concurrent,
        pods=client.CoreV1Api() if args.mode == "k8s" else None,
        pod_poll_interval=max(args.poll_interval, 1.0),
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        for submission in list(controller.active.values()):
            # k8s mode: the driver pods live on, as they do when the operator restarts;
            # the next incarnation finds them SUBMITTED/RUNNING (see reconcile_once).
            if submission.process is not None:
                submission.process.terminate()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    controller.run_forever(args.poll_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
