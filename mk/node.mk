# ---- the real node: kubelet + containerd + CNI bridge + kube-proxy + CoreDNS ---------------
# A real Kubernetes node beside the kwok nodes (README "Real node"). Needs root, Debian's
# containerd/runc/CNI plugins (node-deps); node-up builds what is stale of the images it loads
# (pause, airflow-local = Airflow + chdb, spark, spark-operator-standin). State: $$LOCALPLATFORM_RUN_DIR/node (default .run/node).
.PHONY: node-deps
node-deps: ## Install containerd, runc, the CNI plugins, iptables and conntrack (apt-get, only if missing)
	hack/install-debian-packages.sh node

.PHONY: node-prepare
node-prepare: node-deps images-deps ## Build what node-up needs and no server: CoreDNS, the node's images (if stale) and their archives; make test does it beside the main suite
	hack/install-tools.sh kubernetes coredns
	hack/build-images.sh build pause airflow-local spark spark-operator-standin
	hack/build-images.sh export pause airflow-local spark spark-operator-standin

.PHONY: node-up
node-up: cluster-up node-prepare ## Start a real node (containerd, kubelet, kube-proxy, CoreDNS) and load the images into it (built if stale)
	$(PY) -m localplatform.node up

.PHONY: node-down
node-down: ## Drain and stop the real node (by PID); nothing left running or mounted (images kept)
	@if [ -x $(PY) ]; then $(PY) -m localplatform.node down; fi

.PHONY: node-status
node-status: ## Show the real node's processes and Node object
	$(PY) -m localplatform.node status

.PHONY: test-node
test-node: node-up ## The real node itself: a restricted pod, DNS through CoreDNS, a Service through kube-proxy, clean teardown
	$(VENV)/bin/pytest -m node tests/node/test_node.py

.PHONY: e2e-node
e2e-node: node-up ## The chart on the real node: helm install --wait, pods Ready without restarts, a SparkApplication's real driver/executor pods, helm upgrade
	$(VENV)/bin/pytest -m node -s tests/node/test_node.py tests/node/test_e2e_node.py

.PHONY: e2e-node-down
e2e-node-down: ## Uninstall the releases and stop the node, data services and control plane e2e-node used
	@if [ -x $(PY) ]; then $(PY) -m localplatform.node_e2e down; fi
