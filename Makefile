# Two commands do all the set-up: `make demo` and `make test`. Both create .venv when missing.
# `make docs` builds the documentation site into site/ (strict: a broken link or a missing page fails).
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
EXTRAS := openvino,video,zoo,test,docs

.PHONY: demo test test-fast docs clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch is pinned in the same command: 2.13.0 resolves to the local CPU build on these machines.
	$(PY) -m pip install --quiet "torch==2.13.0" -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/vidlat run --device ort-cpu-1t

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

clean:
	rm -rf $(VENV) build site *.egg-info
