# Everything runs in a private virtualenv (.venv) created on first use, so a
# fresh machine needs only python3.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test test-slow demo bench bench-report clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) tools/setkey.py -f examples/demo.conf

test: $(STAMP)
	$(PY) -m pytest -q

test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow

bench: $(STAMP)
	$(PY) -m pytest bench -q --benchmark-enable --benchmark-only --benchmark-columns=min,median,ops

bench-report: $(STAMP)
	$(PY) bench/report.py

clean:
	rm -rf $(VENV) *.egg-info
