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
SCENARIOS   ?= default
PYTEST_ARGS ?=

export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help setup apt-packages demo demo-destroy test lint unit molecule vault

help:
	@echo "make demo          create or reuse the test machine '$(DEMO)' and converge site.yml on it"
	@echo "make demo-destroy  remove that machine"
	@echo "make test          lint + pytest + molecule ($(SCENARIOS)); what CI runs"
	@echo "make vault ENV=staging  create inventories/ENV/group_vars/all/vault.yml with random secrets"
	@echo "make setup         controller packages and the .venv toolchain (demo and test run it)"

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
	@[ -x $(VENV)/bin/python ] || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements/controller.txt
	@touch $@

demo: setup
	@$(TESTMACHINE) create $(DEMO) --release trixie --reuse --json > /dev/null
	@mkdir -p $(dir $(DEMO_VARS))
	@$(TESTMACHINE) inventory $(DEMO) > $(DEMO_VARS)
	ansible-playbook site.yml -i inventories/local/hosts.yml
	@address=$$(sed -n 's/^ansible_host: *//p' $(DEMO_VARS)); \
	echo; \
	echo "barestack is up on the test machine '$(DEMO)':"; \
	echo "  stack:    http://$$address/"; \
	echo "  shell:    $(TESTMACHINE) shell $(DEMO)"; \
	echo "  status:   $(TESTMACHINE) shell $(DEMO) -- systemctl status nginx"; \
	echo "  logs:     $(TESTMACHINE) shell $(DEMO) -- journalctl -u nginx -n 50"; \
	echo "  remove:   make demo-destroy"

demo-destroy:
	$(TESTMACHINE) destroy $(DEMO)
	rm -f $(DEMO_VARS)

test: setup lint unit molecule

lint:
	yamllint --strict .
	ansible-lint --profile production
	ruff check .
	ruff format --check .

unit:
	pytest $(PYTEST_ARGS)

molecule:
	@for scenario in $(SCENARIOS); do molecule test --scenario-name $$scenario; done

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
	   ("redis_app_password", 24), ("redis_admin_password", 24), ("secret_key", 48))]' > "$$vault"); \
	ansible-vault encrypt --vault-password-file "$$passfile" "$$vault" >/dev/null; \
	echo "wrote $$vault (encrypted); vault password in $$passfile"; \
	echo "run: ansible-playbook site.yml -i inventories/$(ENV)/hosts.yml --vault-password-file $$passfile"
