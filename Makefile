# Set-up and entry points. Every target creates .venv/ on first use and re-installs only
# when the dependency lists or the package metadata change.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# DDS stays on the loopback interface, and the shared-memory segment is large enough for
# full-HD images. Each test module also picks its own ROS_DOMAIN_ID.
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export FASTDDS_DEFAULT_PROFILES_FILE := $(CURDIR)/config/fastdds_shm.xml
export PYTHONPATH := $(CURDIR)/training:$(CURDIR)

# Each target runs its ROS processes in its own DDS domain; override with, for example,
# `make demo DEMO_DOMAIN_ID=47`.
TEST_DOMAIN_ID ?= 11
DEMO_DOMAIN_ID ?= 12
BENCH_DOMAIN_ID ?= 13
LEARNING_DOMAIN_ID ?= 14

.PHONY: venv test demo demo-model bench bench-learning summary clean

venv: $(STAMP)

$(STAMP): requirements.txt constraints.txt setup.py setup.cfg package.xml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet -c constraints.txt -r requirements.txt
	$(VPY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

test: $(STAMP)
	ROS_DOMAIN_ID=$(TEST_DOMAIN_ID) $(VPY) -m pytest -q

demo: $(STAMP)
	ROS_DOMAIN_ID=$(DEMO_DOMAIN_ID) $(VPY) scripts/demo.py --output-dir demo_output

# Rebuild the model file behind `make demo` from the data shipped in this repository.
demo-model: $(STAMP)
	$(VPY) training/train.py --config config/training/demo_tiny.yaml --output-dir runs/demo_tiny
	$(VPY) training/export.py --checkpoint runs/demo_tiny/best.pt --backend exported \
		--output models/protomtl_tiny_demo.pt2

bench: $(STAMP)
	ROS_DOMAIN_ID=$(BENCH_DOMAIN_ID) $(VPY) benchmarks/run_all.py --output benchmarks/results/latest.json

bench-learning: $(STAMP)
	ROS_DOMAIN_ID=$(LEARNING_DOMAIN_ID) $(VPY) benchmarks/bench_learning.py --output benchmarks/results/learning.json

summary: $(STAMP)
	$(VPY) -m protomtl_ros.network.summary

clean:
	rm -rf $(VENV) demo_output build install log
