# mlrt: the front door. `make up` brings up the compose cluster with JupyterLab; `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
COMPOSE := docker compose
# GPU=1: GPU workers (compose.gpu.yaml over compose.yaml; docs/gpu.md).
ifneq ($(GPU),)
COMPOSE += -f compose.yaml -f compose.gpu.yaml
endif
SMOKE_ARGS ?=
# The Go tools (tooling/versions.py TOOLS_BIN, shared by every clone).
TOOLS_BIN := $(or $(MLRT_TOOLS_DIR),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mlrt/tools)/bin

.PHONY: help bootstrap test-host-tools push venv lock lock-check lint unit build test-images runtime-manifest runtime-manifest-check env up gpu-check down smoke \
	test-cluster browser test tools bench clean-volumes sbom k8s-tools k8s-validate k8s-kustomize-base k8s-docs submit \
	k8s-gomod k8s-up k8s-restart-check k8s-down k8s-status k8s-e2e job secret

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

bootstrap: ## make sure a Docker engine with buildx and compose is there (installs Debian's on a bare host)
	@bash tooling/bootstrap-docker.sh

$(VENV)/.installed: tests/requirements-dev.lock tooling/bootstrap-venv.sh
	@bash tooling/bootstrap-venv.sh $(PYTHON) $(VENV) tests/requirements-dev.lock
	@touch $@

venv: $(VENV)/.installed ## the host tools (pytest, ruff, hadolint, uv) in .venv, hash-checked

lock: venv ## regenerate the Python locks (with hashes) and the jar lock (Maven, sha256) from versions.env
	$(VPY) -m tooling.lock
	$(VPY) -m tooling.jars lock

lock-check: venv ## fail when a lock (Python or jar) is stale against versions.env
	$(VPY) -m tooling.lock --check
	$(VPY) -m tooling.jars check

lint: venv lock-check bootstrap ## Python lint, Dockerfile lint, compose config (bootstrap: the compose plugin)
	$(VENV)/bin/ruff check tooling scripts tests smoke_tests images bench
	$(VENV)/bin/ruff format --check tooling scripts tests smoke_tests images bench
	bash -n tooling/*.sh images/spark/entrypoint.sh images/objectstore/entrypoint.sh images/postgres/entrypoint.sh images/base/pip-install-locked
	$(VENV)/bin/hadolint images/*/Dockerfile
	MLRT_VERSION=lint JUPYTER_TOKEN=lint SPARK_AUTH_SECRET=lint MLRT_S3_ACCESS_KEY=lint MLRT_S3_SECRET_KEY=lint SPARK_CONNECT_TOKEN=lint $(COMPOSE) --env-file /dev/null config --quiet

unit: venv ## tests of the build tooling, the CLI and the test cluster's files (no images needed)
	$(VPY) -m pytest tests/unit

build: bootstrap ## build the images (base -> spark -> ml -> notebook); creates the Debian base if no registry has it
	$(PYTHON) -m tooling.images build

test-images: venv build sbom ## per-image tests, inherited by child images (the SBOMs' too)
	$(VPY) -m pytest tests/images --durations=15

sbom: venv build ## an SPDX SBOM per image (Debian packages, Python packages, jars) in build/sbom, by syft
	$(VPY) -m tooling.sbom

runtime-manifest: build ## write docs/runtime-manifest.md (every package and jar) by running the built images
	$(PYTHON) -m tooling.runtime_manifest

runtime-manifest-check: build ## fail when docs/runtime-manifest.md differs from the built images
	$(PYTHON) -m tooling.runtime_manifest --check

k8s-tools: ## build helm, kustomize and kubeconform (pinned in versions.env) with go install, cached by version
	@bash tooling/install-go-tools.sh helm kustomize kubeconform

tools: venv k8s-tools ## every Go-built tool the tests use: k8s-tools, syft, the test cluster's binaries and NetworkPolicy agent
	@bash tooling/install-go-tools.sh syft kube-network-policies registry
	$(VPY) -m tests.k8s_cluster.build build >/dev/null

k8s-validate: venv k8s-tools ## helm lint + strict offline schema checks + security/RBAC tests of chart and kustomize
	$(VPY) -m tooling.k8s validate
	$(VPY) -m pytest tests/k8s

k8s-kustomize-base: venv k8s-tools ## regenerate the chart's copy of the Spark defaults, then k8s/kustomize/base/mlrt.yaml from the chart
	$(VPY) -m tooling.k8s kustomize-base

k8s-secrets: venv ## write a kustomize overlay's missing *-secret.env files with random values (OVERLAY=dev|prod)
	$(VPY) -m tooling.k8s secrets k8s/kustomize/overlays/$(or $(OVERLAY),dev)

k8s-docs: venv k8s-tools ## regenerate docs/kubernetes-values.md (values schema) and docs/kubernetes-network-flows.md
	$(VPY) -m tooling.k8s values-doc
	$(VPY) -m tooling.k8s flows-doc

k8s-gomod: ## regenerate tests/k8s_cluster/gomod/go.mod (the Kubernetes test cluster's wrapper module) from k8s.io/kubernetes's go.mod
	$(PYTHON) -m tests.k8s_cluster.build gomod

k8s-up: venv build ## use the cluster KUBECONFIG points to, else start the Kubernetes test cluster (builds it from Go modules)
	$(VPY) -m tests.k8s_cluster.cluster up

k8s-down: venv ## stop the Kubernetes test cluster and delete its state (built binaries and imported images are kept)
	$(VPY) -m tests.k8s_cluster.cluster down

k8s-restart-check: venv build ## the Kubernetes test cluster comes back after down: up -> down -> up (left up)
	@# Its binaries (and the NetworkPolicy agent) are built first (make tools; a cold Go build takes 15 min or more); the test times each start.
	@$(MAKE) --no-print-directory tools
	$(VPY) -m pytest tests/localcluster -v -s

k8s-status: venv ## which Kubernetes test cluster processes run
	$(VPY) -m tests.k8s_cluster.cluster status

k8s-e2e: venv build k8s-tools ## end-to-end on Kubernetes: helm install, Jupyter, smoke tests, helm test, spark-submit, kustomize
	@kubeconfig=$$($(VPY) -m tests.k8s_cluster.cluster up) && bins=$$($(VPY) -m tests.k8s_cluster.build build) && \
	  KUBECONFIG=$$kubeconfig MLRT_KUBECTL=$$bins/kubectl MLRT_HELM=$(TOOLS_BIN)/helm \
	  $(VPY) -m pytest tests/e2e -v -s --durations=20

submit: venv ## spark-submit APP=path.py to TARGET=compose (default) or k8s; CONF="spark.x=y ..."
	$(if $(APP),,$(error APP is not set: make submit APP=path/to/job.py [TARGET=k8s] [CONF="spark.x=y ..."]))
	$(VPY) -m scripts.submit $(or $(TARGET),compose) $(APP) $(foreach c,$(CONF),--conf $(c))

job: venv ## run a job now: make job NAME=daily-report [PARAMS="key=value ..."] [TARGET=k8s] (docs/jobs.md)
	$(if $(NAME),,$(error NAME is not set: make job NAME=<a job of jobs.yaml / the chart's jobs> [PARAMS="key=value ..."] [TARGET=k8s]))
	@$(VPY) -m scripts.job $(or $(TARGET),compose) $(NAME) $(foreach p,$(PARAMS),--param $(p))

secret: venv ## store a secret for dbutils.secrets: make secret SCOPE=name KEY=name (the value on stdin; docs/dbutils.md)
	$(if $(and $(SCOPE),$(KEY)),,$(error make secret SCOPE=<scope> KEY=<key>, the value on stdin))
	@$(VPY) -m scripts.secret $(SCOPE) $(KEY)

env: ## write .env (image tag; generated Jupyter token, Spark secret, store keys, Connect token, MLflow account)
	@$(PYTHON) -m scripts.dotenv

up: gpu-check build env ## build what is missing and start the compose cluster with JupyterLab (GPU=1: GPU workers)
	$(COMPOSE) up -d --wait --remove-orphans
	@$(PYTHON) -m scripts.dotenv --url

gpu-check: ## with GPU=1: Docker can hand GPUs to containers (the NVIDIA runtime), else say what to install
ifneq ($(GPU),)
	@docker info --format '{{json .Runtimes}}' | grep -q '"nvidia"' || { echo "make up GPU=1: Docker has no nvidia \
	runtime. Install the NVIDIA driver and the NVIDIA Container Toolkit, run nvidia-ctk runtime configure \
	--runtime=docker, restart Docker; or run make up without GPU=1" >&2; exit 2; }
else
	@:
endif

down: ## stop the compose cluster (volumes with notebooks and event logs are kept)
	-$(COMPOSE) down --remove-orphans

smoke: ## run the smoke tests in the driver (jupyter) container against the running cluster
	$(COMPOSE) cp smoke_tests/. jupyter:/tmp/mlrt-smoke-tests
	$(COMPOSE) exec -T -w /tmp/mlrt-smoke-tests jupyter python -X faulthandler -m pytest -p no:cacheprovider -v --durations=20 $(SMOKE_ARGS)

push: venv ## push the built images to a registry: make push REGISTRY=host[:port]/path [IMAGES="spark ml"] (docker login first)
	@test -n "$(REGISTRY)" || { echo "make push: set REGISTRY=host[:port]/path (what the chart's image.registry takes)" >&2; exit 2; }
	$(VPY) -m scripts.push $(REGISTRY) $(IMAGES)

test-host-tools: ## Chromium (the browser test) and tcpdump (the no-call-home test): Debian's, on a bare Debian host
	@bash tooling/bootstrap-test-host.sh

browser: test-host-tools ## the same (Chromium; or set MLRT_CHROMIUM)

test-cluster: venv test-host-tools ## host-side checks of the running cluster (ports, login over HTTP, JupyterLab in Chromium)
	$(VPY) -m pytest tests/cluster --durations=15

# The stages, their order and their budgets: tests/stages.py and docs/testing.md (what each proves, what it
# shares, its time). Each stage's time is printed as it ends and again, all together, at the end (CI shows the end
# of the output); a stage over its budget by more than half fails the run, naming it.
# On compose every smoke test runs, those marked `example` included (each proves a notebook's library with
# assertions, in a shared session: minutes faster than the notebooks' own kernels and sessions), and three example
# notebooks run headless with their tasks checked on several executors: the tour, the barrier-mode launcher
# that once put both ranks on one executor, and the shared table catalog's (dbutils' runs as Run All does in the
# notebook image's tests, and as a job with parameters on compose and Kubernetes). The catalog's managed-table smoke test
# is left to helm test: notebook 18 (table-catalog) creates a managed table and a view by name on compose.
# `make smoke` alone runs every notebook and test; helm test runs the smoke tests on Kubernetes.
SMOKE_IN_TEST := -k "(not test_example_notebook_runs or tensorflow-mirrored-strategy or table-catalog) and not test_a_managed_delta_table"
test: ## everything: static checks, unit tests, tools, build, image tests, compose and Kubernetes e2e (docs/testing.md)
	@$(PYTHON) -m tests.stages --smoke-args '$(SMOKE_IN_TEST)'

bench: venv build ## measure start-up, API launch overhead, scaling, shuffle, image sizes: docs/benchmarks.md (TARGET=k8s: on Kubernetes)
ifeq ($(TARGET),k8s)
	@$(MAKE) --no-print-directory k8s-tools
	@kubeconfig=$$($(VPY) -m tests.k8s_cluster.cluster up) && bins=$$($(VPY) -m tests.k8s_cluster.build build) && \
	  KUBECONFIG=$$kubeconfig MLRT_KUBECTL=$$bins/kubectl MLRT_HELM=$(TOOLS_BIN)/helm \
	  $(VPY) -m bench.run --target k8s $(BENCH_ARGS)
else
	$(VPY) -m bench.run $(BENCH_ARGS)
endif

clean-volumes: down ## delete the cluster's volumes (notebooks and event logs are lost)
	$(COMPOSE) down --volumes
