# The one place that holds the commands. Each target does all set-up first (idempotent, cached in
# the ignored folder .testbed/); set COMFYUI_DIR=/path/to/ComfyUI to use your own checkout instead.
PYTHON ?= python3
TESTBED := $(PYTHON) scripts/testbed.py

.PHONY: setup test test-fast test-random demo bench clean examples

setup:
	$(TESTBED) setup

test:            ## the whole suite (what CI runs): the browser side's unit tests (node --test), then pytest
	$(TESTBED) test-js
	$(TESTBED) test

test-fast:       ## the edit-test loop: the unit tests in-process, no server, no browser, nothing marked slow
	$(TESTBED) test-js
	$(TESTBED) test -m "not slow and not server"

test-random:     ## the whole suite in random order (pytest-randomly; add --randomly-seed=N to repeat a printed seed)
	LCM_KIT_RANDOM_ORDER=1 $(TESTBED) test

demo:            ## the main job: start ComfyUI with the pack, run the LCM example, write PNGs + timing table
	$(TESTBED) demo

bench:           ## speed table (JSON in bench-results/)
	$(TESTBED) bench $(BENCH_ARGS)

clean:           ## remove the test bed (venv, ComfyUI tree, generated models)
	rm -rf .testbed

examples:        ## regenerate example_workflows/*.json, locales/ and the thumbnails (*.jpg, drawn in headless Chromium)
	$(TESTBED) python scripts/example_workflows.py
	$(TESTBED) python scripts/example_thumbnails.py
