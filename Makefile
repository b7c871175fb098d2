# Quickstart targets: both create .venv on first use, so a fresh clone needs only Python >= 3.10.
PYTHON ?= python3
TORCH_INDEX_URL ?=
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo app test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch 2.13.0 (the version CI tests) first, from the CI machines' local CPU wheel; on PyPI it is the multi-GB CUDA
	# build, so elsewhere use `make test TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu` for the CPU one.
	$(BIN)/python -m pip install --quiet torch==2.13.0 $(if $(TORCH_INDEX_URL),--index-url $(TORCH_INDEX_URL))
	$(BIN)/python -m pip install --quiet -e ".[training,test,quality,app]"
	# The app's package (examples/app/vim_app) is not installed; import-linter's app contract (setup.cfg) needs it
	# importable, so a bare `lint-imports` works in this environment.
	echo "$(CURDIR)/examples/app" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/vim_app.pth"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py --output_dir outputs/demo

# The Gradio app over what `make demo` wrote, on http://127.0.0.1:7860; more flags with APP_ARGS="--device cuda ...".
app: $(STAMP)
	$(BIN)/python examples/app/app.py --pipeline outputs/demo/pipeline --tokenizer outputs/demo/tokenizer $(APP_ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

# lint-imports checks the app's package too (setup.cfg), importable through the environment's vim_app.pth.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python scripts/check_copies.py
	$(BIN)/ruff check src tests examples benchmarks scripts
	$(BIN)/ruff format --check src tests examples benchmarks scripts

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_tokenizer.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info outputs
