# barestack: the two commands a fresh Debian machine needs, as root:
#   make demo   create (or reuse) the local test machine and converge site.yml on it
#   make test   lint, unit and service tests, molecule scenarios (what CI runs)
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV        := .venv
PYTHON      ?= python3
TESTMACHINE := python3 tests/machines/testmachine
DEMO        := barestack-demo
DEMO_VARS   := inventories/local/host_vars/$(DEMO)/machine.yml
SCENARIOS   ?= default supervisor
PYTEST_ARGS ?=

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup apt-packages demo demo-destroy test test-bookworm test-cluster lint unit molecule vault

help:
	@echo "make demo          create or reuse the test machine '$(DEMO)' and converge site.yml on it"
	@echo "make demo-destroy  remove that machine"
	@echo "make test          lint + pytest + molecule ($(SCENARIOS)); what CI runs"
	@echo "make vault ENV=staging  create inventories/ENV/group_vars/all/vault.yml with random secrets"
	@echo "make test-bookworm the default scenario on Debian 12 (not in CI: it would push CI past 45 minutes)"
	@echo "make test-cluster  four machines: db, app1, app2, web (not in CI; run it before merging role changes)"
	@echo "make test-vm       site.yml in a qemu VM built from Debian packages, reboot, kernel checks + verify (not in CI)"
	@echo "make drill         restore drill on the demo machine (destroys its data; not in CI)"
	@echo "make setup         controller packages and the .venv toolchain (demo and test run it)"
	@echo "make dev           the whole stack on this machine behind a local Nginx, until Ctrl-C (DEV_PORT=8080)"
	@echo "make run-module M=backend/a-001 ARGS='1.10 1.9'   build or reuse the module's venv and run it"
	@echo "make new-module SERVICE=backend   scaffold the service's next free module"

setup: apt-packages $(VENV)/.installed

# Installs only what is missing, so a second run costs one dpkg-query.
apt-packages:
	@missing=$$(grep -Ev '^\s*(#|$$)' requirements/apt-controller.txt | while read -r pkg; do \
	    dpkg-query -W -f='$${Status}\n' "$$pkg" 2>/dev/null | grep -q '^install ok installed$$' || echo "$$pkg"; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "installing controller packages:" $$missing; \
	  apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: requirements/controller.txt
	@# pip, not python: a venv made without ensurepip (no python3-venv) has python but no pip.
	@[ -x $(VENV)/bin/pip ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements/controller.txt
	@touch $@

demo: setup
	@mkdir -p $(dir $(DEMO_VARS))
	@# The machine's connection, as host_vars (JSON is YAML) beside inventories/local/hosts.yml.
	@$(TESTMACHINE) create $(DEMO) --release trixie --reuse --json | python3 -c 'import json, sys; \
	  m = json.load(sys.stdin); print(json.dumps({"ansible_host": m["address"], "ansible_user": m["user"], \
	  "ansible_port": m["ssh_port"], "ansible_ssh_private_key_file": m["ssh_key"], \
	  "ansible_ssh_common_args": m["ssh_common_args"], "ansible_python_interpreter": "/usr/bin/python3"}, indent=2))' \
	  > $(DEMO_VARS)
	ansible-playbook site.yml -i inventories/local/hosts.yml
	@address=$$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["ansible_host"])' $(DEMO_VARS)); \
	echo; \
	echo "barestack is up on the test machine '$(DEMO)' ($$address):"; \
	echo "  frontend:        http://$$address/"; \
	echo "  backend API:     http://$$address/api/health   http://$$address/api/modules"; \
	echo "  infrastructure:  http://$$address/infra/   (log in as admin: password in .secrets/local/admin_password)"; \
	echo "  an API token:    $(TESTMACHINE) shell $(DEMO) -- barestack-api-token create me"; \
	echo "  a shell there:   $(TESTMACHINE) shell $(DEMO)"; \
	echo "  services:        $(TESTMACHINE) shell $(DEMO) -- systemctl status 'barestack-*'"; \
	echo "  logs:            $(TESTMACHINE) shell $(DEMO) -- journalctl -t barestack-backend -n 50"; \
	echo "  run a module:    $(TESTMACHINE) shell $(DEMO) -- run_module.sh backend/a-001 app.py 1.10 1.9"; \
	echo "  remove it:       make demo-destroy"

demo-destroy:
	$(TESTMACHINE) destroy $(DEMO)
	rm -f $(DEMO_VARS)

test: setup lint unit molecule

test-bookworm: setup
	molecule test --scenario-name bookworm

test-cluster: setup
	molecule test --scenario-name cluster

lint:
	yamllint --strict .
	ansible-lint --profile production
	ruff check .
	ruff format --check .

# Ends with the count of skips; a skip whose reason is not in tests/conftest.py's EXPLAINED_SKIPS
# (why the test cannot run here) fails it.
unit:
	pytest $(PYTEST_ARGS)

# Each scenario's output is kept in .cache/molecule-<scenario>.out; when one fails, its failed tasks are
# printed last, where a CI log's tail shows them (molecule prunes the scenario's own ansible.log).
molecule:
	@mkdir -p .cache; for scenario in $(SCENARIOS); do \
	  out=.cache/molecule-$$scenario.out; \
	  if ! molecule test --scenario-name $$scenario 2>&1 | tee $$out; then \
	    echo "== molecule $$scenario failed; its last task headers and failures ($$out):"; \
	    sed 's/\x1b\[[0-9;]*m//g' $$out | grep -a -E 'TASK \[|PLAY \[|fatal: \[|FAILED! =>|"assertion":|"msg":' \
	      | grep -a -v 'All assertions passed' | tail -n 25 | cut -c1-400; \
	    exit 1; \
	  fi; \
	done

# Random secrets for a vault-backed environment, encrypted at once; refuses to overwrite.
vault: setup
	@[ -n "$${ENV:-}" ] || { echo "usage: make vault ENV=staging|production" >&2; exit 2; }
	@vault=inventories/$(ENV)/group_vars/all/vault.yml; \
	[ -d inventories/$(ENV) ] || { echo "no inventory inventories/$(ENV)" >&2; exit 2; }; \
	[ ! -e "$$vault" ] || { echo "$$vault exists; edit it with ansible-vault edit" >&2; exit 2; }; \
	passfile=$${ANSIBLE_VAULT_PASSWORD_FILE:-.secrets/vault-pass-$(ENV)}; \
	mkdir -p .secrets && chmod 700 .secrets; \
	[ -s "$$passfile" ] || (umask 077; python3 -c 'import secrets; print(secrets.token_urlsafe(32))' > "$$passfile"); \
	(umask 077; python3 -c 'import secrets; t = secrets.token_urlsafe; print("---"); \
	  [print(f"vault_barestack_{n}: {t(l)}") for n, l in (("db_owner_password", 24), ("db_app_password", 24), \
	   ("redis_app_password", 24), ("redis_admin_password", 24), ("redis_worker_password", 24), ("secret_key", 48), \
	   ("frontend_api_token", 32), ("admin_password", 18))]; \
	  print(f"vault_barestack_backup_cipher_pass: {secrets.token_hex(32)}")' > "$$vault"); \
	keydir=$$(mktemp -d); ssh-keygen -q -t ed25519 -N '' -C barestack-backup -f "$$keydir/k" </dev/null; \
	(umask 077; python3 -c 'import sys; d = sys.argv[1]; \
	  print("vault_barestack_backup_ssh_private_key: |"); [print("  " + l) for l in open(d + "/k").read().splitlines()]; \
	  print("vault_barestack_backup_ssh_public_key: " + open(d + "/k.pub").read().strip())' "$$keydir" >> "$$vault"); \
	rm -rf "$$keydir"; \
	cadir=$$(mktemp -d); ANSIBLE_ROLES_PATH=$(CURDIR)/roles ansible-playbook playbooks/tls-ca.yml -e tls_ca_out="$$cadir" >/dev/null; \
	(umask 077; python3 -c 'import sys; d = sys.argv[1]; \
	  [(print(f"vault_barestack_tls_ca_{n}: |"), [print("  " + l) for l in open(f"{d}/tls-ca.{f}").read().splitlines()]) \
	   for n, f in (("cert", "crt"), ("key", "key"))]' "$$cadir" >> "$$vault"); \
	rm -rf "$$cadir"; \
	ansible-vault encrypt --vault-password-file "$$passfile" "$$vault" >/dev/null; \
	echo "wrote $$vault (encrypted); vault password in $$passfile"; \
	echo "run: ansible-playbook site.yml -i inventories/$(ENV)/hosts.yml --vault-password-file $$passfile"

# --- bench (issue 6) -------------------------------------------------------------------------
# Benchmarks on bench-* test machines; not part of `make test` (their smoke test is, in pytest).
#   make bench                every part, < 30 min on 2 cores; writes bench/results/bench-all.{json,md}
#   make bench PART=venvs     one part, or a comma list of converge,nochange,venvs,requests,deploy
#   make bench PART=backup    backup/restore time, repository size and RPO for a generated 1 GiB
#                             database, on a machine of its own (not in "all"; BENCH_ARGS='--backup-size-mb 256')
#   make bench BENCH_ARGS='--iterations 1 --module-counts 100'   quicker, for trying changes
#   make bench PART=deploy BENCH_ARGS='--process-manager supervisor'   the services under supervisor
#                             (bench/results/bench-deploy-supervisor.{json,md}; not with the requests part)
#   make bench-smoke          the bench code on small N without a machine (< 1 min)
PART       ?= all
BENCH_ARGS ?=

.PHONY: bench bench-smoke

bench: setup
	PYTHONPATH=tests/bench $(VENV)/bin/python -m barestack_bench --part $(PART) $(BENCH_ARGS)

bench-smoke: setup
	$(VENV)/bin/pytest -q tests/unit/bench

# --- restore drill (issue 13) ------------------------------------------------------------------
# On a machine converged with site.yml (the demo machine by default; DRILL_INVENTORY=... for another):
# canary rows and keys, a backup, a point-in-time restore after destroying the data, a row-by-row
# comparison, the scheduled scratch-cluster drill; then a missing repository must fail the backup
# unit while the app keeps serving. Not in `make test`/CI: it needs a converged machine and destroys
# its data on purpose, and it takes minutes on top of the converge.
DRILL_INVENTORY ?= inventories/local/hosts.yml

.PHONY: drill

drill: setup
	ansible-playbook tests/integration/drill-restore.yml -i $(DRILL_INVENTORY)
	ansible-playbook tests/integration/drill-failure.yml -i $(DRILL_INVENTORY)

# The same with a backup host, on two test machines of its own (DRILL_DB, DRILL_BACKUP): the
# repository and the Redis copies on the backup host; converge twice (the second changed=0), a
# --check --diff run (changed=0), a backup, the point-in-time restore drill (the local Redis
# snapshots removed too, so the restore fetches them from the backup host); then the backup machine
# is powered off: the backup units must fail and the dashboard warn while the site answers.
# The machines are destroyed at the end unless DRILL_KEEP=1.
DRILL_DB       ?= drill-db
DRILL_BACKUP   ?= drill-backup
DRILL_KEEP     ?= 0
# The Debian release of both machines: trixie or bookworm (PostgreSQL 17 / 15).
DRILL_RELEASE  ?= trixie
DRILL_HOST_INV := .cache/drill-backup-host
# An inventory file that does not parse is an error here, not a run against fewer hosts (or none);
# so the generated secrets and the run logs live beside the inventory directory, not in it.
DRILL_SECRETS  := BARESTACK_SECRETS_DIR=$(CURDIR)/$(DRILL_HOST_INV)-secrets ANSIBLE_INVENTORY_ANY_UNPARSED_IS_FAILED=true

.PHONY: drill-backup-host
drill-backup-host: setup
	@mkdir -p $(DRILL_HOST_INV)
	$(TESTMACHINE) create $(DRILL_DB) --release $(DRILL_RELEASE) --reuse --json >/dev/null
	$(TESTMACHINE) create $(DRILL_BACKUP) --release $(DRILL_RELEASE) --reuse --json >/dev/null
	$(TESTMACHINE) inventory $(DRILL_DB) $(DRILL_BACKUP) > $(DRILL_HOST_INV)/machines.yml
	@{ printf 'all:\n  children:\n'; \
	   for g in postgres redis app web; do printf '    %s:\n      hosts:\n        %s:\n' $$g $(DRILL_DB); done; \
	   printf '    backup:\n      hosts:\n        %s:\n' $(DRILL_BACKUP); } > $(DRILL_HOST_INV)/groups.yml
	@ln -sfn $(CURDIR)/inventories/local/group_vars $(DRILL_HOST_INV)/group_vars
	$(DRILL_SECRETS) ansible-playbook site.yml -i $(DRILL_HOST_INV)
	$(DRILL_SECRETS) ansible-playbook site.yml -i $(DRILL_HOST_INV) | tee $(DRILL_HOST_INV)-second.log
	@! grep -E 'changed=[1-9]' $(DRILL_HOST_INV)-second.log || { echo "second converge changed something" >&2; exit 1; }
	@for m in $(DRILL_DB) $(DRILL_BACKUP); do grep -qE "^$$m +: ok=[1-9]" $(DRILL_HOST_INV)-second.log \
	  || { echo "the second converge did not reach $$m" >&2; exit 1; }; done
	$(DRILL_SECRETS) ansible-playbook site.yml -i $(DRILL_HOST_INV) --check --diff | tee $(DRILL_HOST_INV)-check.log
	@! grep -E 'changed=[1-9]' $(DRILL_HOST_INV)-check.log || { echo "--check --diff reports changes" >&2; exit 1; }
	$(DRILL_SECRETS) ansible-playbook playbooks/backup.yml -i $(DRILL_HOST_INV)
	$(DRILL_SECRETS) ansible-playbook tests/integration/verify-backup.yml -i $(DRILL_HOST_INV)
	$(DRILL_SECRETS) ansible-playbook tests/integration/drill-restore.yml -i $(DRILL_HOST_INV)
	$(TESTMACHINE) shell $(DRILL_BACKUP) -- systemctl poweroff || true
	@sleep 5
	$(DRILL_SECRETS) ansible-playbook tests/integration/drill-backup-host-lost.yml -i $(DRILL_HOST_INV)
	@[ "$(DRILL_KEEP)" = 1 ] || { $(TESTMACHINE) destroy $(DRILL_DB); $(TESTMACHINE) destroy $(DRILL_BACKUP); }

# --- the module authors' loop (issue 18) -------------------------------------------------------
# make dev: PostgreSQL, Redis, the three services (gunicorn --reload, each from its venv), a run
# worker and Nginx with the nginx role's site on 127.0.0.1:$(DEV_PORT), in the foreground; Ctrl-C
# stops all of it. Venvs come from the venv manager, offline from a local wheelhouse (PyPI only
# when a requirements file changed). Root only (the test kit's PostgreSQL runs as postgres).
# services/README.md is the module authors' guide.
DEV_PORT  ?= 8080
DEV_STATE ?= .cache/dev
SERVICE   ?= backend
SCRIPT    ?= app.py
ARGS      ?=
DEV_PY    := $(VENV)/bin/python

.PHONY: dev run-module new-module

dev:
	@[ -x $(DEV_PY) ] || { echo "no $(VENV): run make setup first" >&2; exit 2; }
	$(DEV_PY) tests/dev/dev_stack.py --port $(DEV_PORT) --state-dir $(DEV_STATE)

# The module's venv is built or reused (only that one), then services/tools/run_module.sh runs it
# as on a host: cwd = the module folder, PYTHONPATH = its service folder, the module's exit code.
run-module:
	@[ -n "$${M:-}" ] || { echo "usage: make run-module M=<service>/<module> [SCRIPT=app.py] [ARGS='...']" >&2; exit 2; }
	@$(DEV_PY) tests/dev/dev_venvs.py --state-dir $(DEV_STATE) run-module "$$M" "$(SCRIPT)" $(ARGS)

new-module:
	@$(DEV_PY) tests/dev/new_module.py "$(SERVICE)"

# --- VM scenario (issue 14) ----------------------------------------------------------------------
# A qemu VM with a kernel of its own, from a disk image built here from Debian packages (cached):
# converge site.yml, reboot, then tests/integration/verify-kernel.yml and molecule default's verify.
# Not in `make test`/CI: under TCG (no KVM) a full run takes hours here. Run it before merging
# changes to roles/common. The kernel part alone (common role, reboot, verify-kernel.yml):
#   make test-vm VM_ARGS='--converge playbooks/common.yml --verify tests/integration/verify-kernel.yml'
VM_ARGS ?=

.PHONY: test-vm

test-vm: setup
	python3 tests/machines/vm.py $(VM_ARGS)
