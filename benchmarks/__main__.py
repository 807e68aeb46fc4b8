"""``python -m benchmarks [NAME ...]``: runs each benchmark module's ``main()`` (all by default)."""

import importlib
import pkgutil
import sys

import benchmarks

SKIP = {"harness", "versus_official"}  # versus_official runs under a PyTorch Python
names = sys.argv[1:] or sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                               if m.name not in SKIP and not m.name.startswith("_"))
sys.argv = sys.argv[:1]  # the benchmarks' own argument parsers see no module names
for name in names:
  print(f"== {name}", flush=True)
  importlib.import_module(f"benchmarks.{name}").main()
