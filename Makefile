# Orders ETL platform. `make demo` runs the main job; `make test` runs every test.
# Each target installs what it needs (pinned in versions.env / uv.lock) into ignored
# folders, idempotently. `make help` lists the targets.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
include versions.env

PYTHON ?= python3.11
TOOLS := .tools
UV := $(TOOLS)/uv/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
SPARK_CRDS := $(TOOLS)/share/spark-crds/sparkoperator.k8s.io_sparkapplications.yaml

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# ---- installation ------------------------------------------------------------------
$(UV): versions.env
	$(PYTHON) -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
	  --upgrade --target $(TOOLS)/uv uv==$(UV_VERSION)
	@touch $@

# Bytecode compiled at install (as the images do): every Airflow process, task, Spark
# Python worker and pytest run imports from .pyc files, also where PYTHONDONTWRITEBYTECODE
# is set (then nothing ever writes them: measured here, importing Airflow's models,
# pandas, boto3 and pyspark.sql took 5.9 s from source and 2.3 s from bytecode).
$(VENV)/.synced: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

.PHONY: venv
venv: $(VENV)/.synced ## Create .venv from uv.lock

.PHONY: tools
tools: ## Build/install the pinned tools into .tools (Go-built servers and CLIs, Maven jars)
	hack/install-tools.sh

.PHONY: services-install
services-install: ## Install Debian's PostgreSQL and Redis (apt-get, only if missing)
	hack/install-debian-packages.sh

$(SPARK_CRDS): $(VENV)/.synced rig/localplatform/src/localplatform/crds.py
	$(PY) -m localplatform.crds --out-dir $(dir $@)

.PHONY: crds
crds: $(SPARK_CRDS) ## Generate the SparkApplication CRDs from kubeflow-spark-api

# The three installs are independent and mostly wait on downloads: they run at once.
.PHONY: setup
setup: ## Everything the tests and the demo need
	$(MAKE) --no-print-directory -j3 services-install tools venv
	$(MAKE) --no-print-directory crds

# ---- local control plane -----------------------------------------------------------
.PHONY: cluster-up
cluster-up: setup ## Start etcd, kube-apiserver, controller-manager, scheduler and kwok nodes on 127.0.0.1
	$(PY) -m localplatform.cluster up

.PHONY: cluster-down
cluster-down: ## Stop the local control plane (by PID) and delete its data
	@if [ -x $(PY) ]; then $(PY) -m localplatform.cluster down; fi

.PHONY: cluster-status
cluster-status: ## Show the local control plane's processes, version and nodes
	$(PY) -m localplatform.cluster status

# ---- local data services ----------------------------------------------------------
.PHONY: services-up
services-up: setup ## Start Postgres, Redis, Kafka (KRaft) and the S3 server on 127.0.0.1
	$(PY) -m localplatform.services up

.PHONY: services-down
services-down: ## Stop the data services (by PID) and delete their data
	@if [ -x $(PY) ]; then $(PY) -m localplatform.services down; fi

.PHONY: services-status
services-status: ## Show the data services' processes and ports
	$(PY) -m localplatform.services status

# ---- GitOps: a real Argo CD (core install) on the local cluster ------------------------
.PHONY: argocd-up
argocd-up: cluster-up services-up ## Start Argo CD (application controller + repo-server) and its Git server on 127.0.0.1
	$(PY) -m localplatform.argocd up

.PHONY: argocd-down
argocd-down: ## Delete the Applications, stop Argo CD and its Git server (by PID), remove its objects
	@if [ -x $(PY) ]; then $(PY) -m localplatform.argocd down; fi

.PHONY: argocd-status
argocd-status: ## Show Argo CD's processes and Applications
	$(PY) -m localplatform.argocd status

# ---- main job ----------------------------------------------------------------------
# EVENTS_DIR=dir: publish these JSONL files instead of generated events; ORDERS: how many.
ORDERS ?= 200
SEED ?= 7
.PHONY: demo
demo: setup ## Run the whole pipeline locally: events -> Kafka -> Airflow -> Spark/Iceberg -> ClickHouse
	$(PY) -m localplatform.demo up
	$(PY) -m localplatform.demo run $(if $(EVENTS_DIR),--events-dir $(EVENTS_DIR),--orders $(ORDERS) --seed $(SEED))

.PHONY: demo-down
demo-down: ## Stop everything `make demo` started (by PID) and delete its data
	@if [ -x $(PY) ]; then $(PY) -m localplatform.demo down; fi

# ---- kind (users with Docker; not exercised by this project's CI) ------------------
# Linux with a Docker engine. The wiring and the assertions of `make e2e-node` on a kind
# cluster with the real kubeflow spark-operator (localplatform.kind_e2e; README "kind").
KIND_CLUSTER ?= orders-etl
KIND := $(TOOLS)/bin/kind

.PHONY: kind-up
kind-up: setup ## (Docker) kind cluster with the images, this machine's data services exposed to it, the real spark-operator and this chart
	hack/install-tools.sh kind
	IMAGES_ENGINE=docker hack/build-images.sh build airflow-local spark
	KIND_CLUSTER=$(KIND_CLUSTER) $(PY) -m localplatform.kind_e2e up

.PHONY: kind-e2e
kind-e2e: kind-up ## (Docker) The end-to-end assertions of `make e2e-node`, through the kind kubeconfig
	CHART_E2E_TARGET=kind KIND_CLUSTER=$(KIND_CLUSTER) $(VENV)/bin/pytest -m node -s tests/node/test_e2e_node.py

.PHONY: kind-down
kind-down: ## (Docker) Delete the kind cluster and stop the data services kind-up started (by PID)
	@if [ -x $(PY) ]; then KIND_CLUSTER=$(KIND_CLUSTER) $(PY) -m localplatform.kind_e2e down; fi

# ---- tests -------------------------------------------------------------------------
.PHONY: lint
lint: venv ## ruff (lint + format check) and mypy --strict
	$(VENV)/bin/ruff check src rig tests bench spark-jobs
	$(VENV)/bin/ruff format --check src rig tests bench spark-jobs
	$(VENV)/bin/mypy
	$(VENV)/bin/mypy --strict bench

.PHONY: test-unit
test-unit: venv crds ## Unit tests (no servers)
	$(VENV)/bin/pytest -m unit

.PHONY: test-integration
test-integration: setup ## Integration tests against the real local control plane
	$(VENV)/bin/pytest -m integration

.PHONY: test-gitops
test-gitops: setup ## Argo CD syncs the chart from a local Git repository (pytest -m gitops)
	$(VENV)/bin/pytest -m gitops

.PHONY: e2e
e2e: setup ## The whole pipeline end to end against an independent computation (wipes the demo)
	$(VENV)/bin/pytest -m e2e

.PHONY: test-reliability
test-reliability: setup ## Kill -9 HA components mid-run on the local platform (wipes the demo)
	$(VENV)/bin/pytest -m reliability

.PHONY: test-platform
test-platform: setup ## e2e and reliability in one session on one local platform, as `make test` runs them (wipes the demo)
	$(VENV)/bin/pytest -m "e2e or reliability"

.PHONY: test
test: setup lint ## Every test suite (what CI runs): fast tiers + GitOps, e2e, reliability, images, the real node; a timing table at the end
	MAKE="$(MAKE)" hack/run-test-suites.sh

# ---- container images ----------------------------------------------------------------
# Built daemonless with podman here (hack/build-images.sh; no Docker engine, no registry).
IMAGES ?=

.PHONY: images-deps
images-deps: ## Install podman, runc and debootstrap (apt-get, only if missing)
	hack/install-debian-packages.sh images

.PHONY: images
images: images-deps ## Build the base, pause, Airflow, Spark and stand-in images with podman (incremental; IMAGES=airflow ... for some)
	hack/install-tools.sh spark-jars
	hack/build-images.sh build $(IMAGES)

.PHONY: images-export
images-export: images ## Write OCI archives of the images into .tools/images/export (for ctr images import)
	hack/build-images.sh export $(filter-out base,$(IMAGES))

.PHONY: images-clean
images-clean: ## Remove the images (the base is kept), dangling build layers and exports
	hack/build-images.sh clean

.PHONY: lint-images
lint-images: venv ## hadolint every Dockerfile
	$(VENV)/bin/hadolint --config .hadolint.yaml images/*/Dockerfile

.PHONY: test-images
test-images: images ## Run the images under podman (pytest -m images; starts its own data services)
	LOCALPLATFORM_PORT_OFFSET=$${LOCALPLATFORM_PORT_OFFSET:-400} \
	LOCALPLATFORM_RUN_DIR=$${LOCALPLATFORM_RUN_DIR:-$(CURDIR)/.run/images} \
	  $(VENV)/bin/pytest -m images

# For users with a Docker engine (not exercised on the podman-only machines here): the same
# Dockerfiles and staged contexts, FROM the public base image.
.PHONY: docker-images
docker-images: venv ## [docker] Build the Airflow and Spark images with docker
	hack/install-tools.sh spark-jars
	IMAGES_ENGINE=docker hack/build-images.sh build airflow spark

.PHONY: docker-push
docker-push: ## [docker] Tag and push the images to IMAGES_REGISTRY
	IMAGES_ENGINE=docker hack/build-images.sh push

.PHONY: kind-load
kind-load: ## [docker] Load the images into the kind cluster KIND_CLUSTER (default: orders-etl)
	hack/install-tools.sh kind
	KIND=$(KIND) KIND_CLUSTER=$(KIND_CLUSTER) IMAGES_ENGINE=docker hack/build-images.sh kind-load

.PHONY: clean
clean: demo-down ## Remove runtime state (.run); keeps the tool and Python caches
	rm -rf .run

# ---- chart -------------------------------------------------------------------------
CHART := charts/orders-etl
CHART_VALUES := $(wildcard values/*.yaml) $(wildcard $(CHART)/ci/*-values.yaml)

.PHONY: chart-tools
chart-tools: ## Install the pinned helm and helm-docs (idempotent)
	hack/install-tools.sh helm helm-docs

.PHONY: chart-lint
chart-lint: chart-tools ## helm lint --strict the chart with every values/ file and ci/ scenario
	@for f in $(CHART_VALUES); do \
	  echo "helm lint --strict $(CHART) -f $$f"; \
	  out=$$($(TOOLS)/bin/helm lint --strict $(CHART) --kube-version $(KUBERNETES_VERSION) -f $$f 2>&1) \
	    || { echo "$$out"; exit 1; }; \
	  if grep -q 'Fail:' <<<"$$out"; then echo "$$out"; exit 1; fi; \
	done

.PHONY: chart-docs
chart-docs: chart-tools venv ## Regenerate the chart's values.schema.json and README.md from values.yaml
	$(PY) $(CHART)/hack/values_schema.py
	$(TOOLS)/bin/helm-docs --chart-search-root charts --template-files README.md.gotmpl \
	  --sort-values-order file --skip-version-footer

.PHONY: test-chart
test-chart: chart-tools venv ## Chart render, lint, schema and docs tests (pytest -m chart; no cluster)
	$(VENV)/bin/pytest -m chart

# ---- further areas, one fragment each (benchmarks, the real node) ----------------------
include $(sort $(wildcard mk/*.mk))
