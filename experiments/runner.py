"""Command line: list experiments, run one, or run every smoke preset as the demo.

    python -m experiments list
    python -m experiments run NAME --preset smoke|paper|paper:VARIANT --workdir DIR
                          [--set key=value ...]
                          [--restart | --resume-with-changes]
    python -m experiments config NAME [--preset P]
    python -m experiments demo --workdir runs/demo [--seeds 0,1,2] [--jobs 2]
    python -m experiments data list

Each experiment is a module ``experiments/configs/<name>.py`` with ``get_config(preset)`` and
``run(config, workdir) -> Report`` (big_vision-style configs, flax-examples-style entry point).
A config whose paper has several tables (datasets, scales, backbones) names them in a module-level
``PAPER_VARIANTS = {variant: one-line description}``; ``--preset paper:VARIANT`` selects one before
any ``--set`` is applied, so every value derived from the variant is right.
Multi-host runs call ``jspectral.train.distributed.initialize()`` from the environment first.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import difflib
import importlib
import inspect
import multiprocessing
import os
import pathlib
import pkgutil
import re
import shutil
import sys
import time
import traceback
from collections.abc import Sequence

import ml_collections

from experiments import configs
from experiments.report import Headline, Report, Table, html_page

PRESETS = ("smoke", "paper")


def experiment_names() -> list[str]:
  """Every module under ``experiments/configs``."""
  return sorted(m.name for m in pkgutil.iter_modules(configs.__path__))


def load(name: str):
  if name not in experiment_names():
    close = difflib.get_close_matches(name, experiment_names(), n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise CliError(f"unknown experiment {name!r}; {hint}known: {', '.join(experiment_names())}")
  return importlib.import_module(f"experiments.configs.{name}")


class CliError(Exception):
  """A command-line mistake: ``main`` prints it as one line and exits with status 2."""


def parse_override(text: str) -> tuple[str, str]:
  """``"train.total_steps=20"`` -> ``("train.total_steps", "20")`` (the value is parsed later,
  against the type of the field it replaces)."""
  key, sep, raw = text.partition("=")
  if not sep or not key:
    raise CliError(f"--set: expected KEY=VALUE, got {text!r}")
  return key, raw


def flat_items(config, prefix: str = "") -> list[tuple[str, object]]:
  """Every leaf of a ConfigDict as ``(dotted.key, value)``, depth first, in definition order."""
  items = []
  for key, value in config.items():
    name = f"{prefix}{key}"
    if isinstance(value, ml_collections.ConfigDict) and len(value):
      items.extend(flat_items(value, name + "."))
    else:
      items.append((name, value))
  return items


def _literal(raw: str, current):
  """``raw`` as the value that replaces ``current``: a Python literal, or the text itself where
  the field holds a string (so ``--set data.source=123`` stays the string ``"123"``)."""
  if isinstance(current, str):
    return raw
  try:
    return ast.literal_eval(raw)
  except (ValueError, SyntaxError):
    return raw


def apply_override(config, key: str, raw: str) -> None:
  """Sets ``config[key] = raw`` for an existing dotted ``key`` with a value of the field's type.

  Raises:
    CliError: the key is not in the config (the message lists the closest keys), or the value does
      not have the field's type.
  """
  *parents, leaf = key.split(".")
  node = config
  for part in parents:
    node = node.get(part) if isinstance(node, ml_collections.ConfigDict) else None
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    keys = [k for k, _ in flat_items(config)]
    close = difflib.get_close_matches(key, keys, n=3, cutoff=0.5)
    hint = f"; closest: {', '.join(close)}" if close else ""
    raise CliError(f"--set {key}: no such key in the config{hint} "
                   "(python -m experiments config NAME lists every key)")
  current = node[leaf]
  value = _literal(raw, current)
  wrong_type = CliError(f"--set {key}={raw}: expected {type(current).__name__}, got "
                        f"{type(value).__name__}")
  if isinstance(current, bool) != isinstance(value, bool) and current is not None:
    raise wrong_type
  try:
    node[leaf] = value
  except TypeError:
    raise wrong_type from None


def presets(name: str) -> list[str]:
  """``smoke``, ``paper`` and every ``paper:VARIANT`` of experiment ``name``."""
  variants = getattr(load(name), "PAPER_VARIANTS", {})
  return [*PRESETS, *(f"paper:{v}" for v in variants)]


def build_config(name: str, preset: str, overrides: list[str]):
  if preset not in presets(name):
    raise CliError(f"--preset: expected one of {presets(name)}, got {preset!r}")
  config = load(name).get_config(preset)
  for key, raw in map(parse_override, overrides):
    apply_override(config, key, raw)
  return config


def prepare_workdir(workdir: pathlib.Path, config, *, restart: bool,
                    resume_with_changes: bool) -> None:
  """Checks ``workdir`` against ``config`` before anything is written.

  A workdir whose ``config.json`` differs from ``config`` is refused (nothing is touched) unless
  ``restart`` (the old files move to ``workdir/previous/<time>/``; nothing is deleted) or
  ``resume_with_changes`` (the run continues from its checkpoints with the new values; the old
  ``config.json`` is kept as ``config.<time>.json``).
  """
  saved = workdir / "config.json"
  new_json = config.to_json_best_effort(indent=2) + "\n"
  if restart and workdir.exists() and any(p.name != "previous" for p in workdir.iterdir()):
    target = workdir / "previous" / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True)
    for path in workdir.iterdir():
      if path.name != "previous":
        shutil.move(str(path), target / path.name)
    print(f"restart: moved the earlier run to {target}", flush=True)
  else:
    from jspectral import train

    try:
      changes = train.guard_saved_config(
          saved, new_json, allow=resume_with_changes,
          advice="use another --workdir, --restart (keeps the old files under previous/) or "
                 "--resume-with-changes")
    except train.WorkdirConflictError as error:
      raise CliError(str(error)) from None
    if changes:
      print(f"resuming with changes: {'; '.join(changes)}", flush=True)


def run_experiment(name: str, preset: str, workdir: pathlib.Path, overrides: list[str] = (), *,
                   restart: bool = False, resume_with_changes: bool = False) -> Report:
  """Runs one experiment and writes ``config.json`` and ``report.md`` to ``workdir``."""
  import jax

  from jspectral import train
  from jspectral.train import distributed

  distributed.initialize()
  cache_compiled_programs(workdir / ".jax_cache")
  config = build_config(name, preset, list(overrides))
  if jax.process_index() == 0:
    prepare_workdir(workdir, config, restart=restart, resume_with_changes=resume_with_changes)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(config.to_json_best_effort(indent=2) + "\n")
  with train.allow_config_changes(resume_with_changes):
    report = load(name).run(config, workdir)
  if jax.process_index() == 0:
    (workdir / "report.md").write_text(report.markdown())
    print(f"report: {workdir / 'report.md'}", flush=True)
  return report


def cache_compiled_programs(directory: pathlib.Path) -> None:
  """Keeps XLA's compiled programs in ``directory`` (unless a cache is already set), so a resumed
  run, a re-run, or a run of the same shapes skips compilation."""
  import jax

  if not jax.config.jax_compilation_cache_dir:
    jax.config.update("jax_compilation_cache_dir", str(directory))


def seed_overrides(name: str, seed: int) -> list[str]:
  """``--set`` lines that shift every training seed of ``name``'s smoke config by ``seed``.

  The keys shifted are the top-level ``seed`` and every ``seed`` inside a ``train`` block, so seed 0
  is the smoke preset itself and seeds 1, 2 re-run it with other initialisations and batches.
  """
  config = build_config(name, "smoke", [])
  return [f"{key}={value + seed}" for key, value in flat_items(config)
          if key.split(".")[-1] == "seed" and isinstance(value, int)
          and (key == "seed" or "train" in key.split(".")[:-1])]


# The smoke presets by CPU seconds, most first (longest-first keeps parallel jobs ending together;
# measured one by one with a cold compilation cache, docs/benchmarks.md "Smoke runs").
SLOWEST_FIRST = ("classify_lola", "denoise_icvl", "downstream_spectral_earth", "sr_essaformer",
                 "pretrain_spectral_earth", "ssl_spectral_transforms", "pansharpen_benchmark",
                 "sr_mixup_mtl", "graph_ssl_node", "graph_ssl_graph", "ssl_intl",
                 "pde_navier_stokes", "pansharpen_rho_pnn", "train_demo",
                 "pde_reaction_diffusion", "pde_poisson")


def quiet_overrides(name: str) -> list[str]:
  """``--set`` lines that turn off every progress bar of ``name``'s smoke config (parallel demo
  jobs would interleave them; each finished run prints its own line instead)."""
  return [f"{key}=False" for key, value in flat_items(build_config(name, "smoke", []))
          if key.split(".")[-1] == "progress" and value is True]


def demo(workdir: pathlib.Path, seeds: Sequence[int] = (0,), jobs: int = 1) -> int:
  """Runs every experiment's smoke preset for each seed; writes ``REPORT.md`` and ``index.html``.

  Compiled programs are cached under ``workdir/.jax_cache`` so that re-runs and runs of the same
  shapes skip compilation. With ``jobs > 1`` the runs go to that many worker processes (each
  compiles on its own core; accelerator memory is then allocated on demand, not preallocated).
  Prints one line per finished run (name, seed, wall and CPU seconds, checks). Exits non-zero
  when an experiment raised or a check failed.
  """
  if jobs < 1:
    raise ValueError(f"jobs: expected a positive number of worker processes, got {jobs}")
  workdir.mkdir(parents=True, exist_ok=True)
  cache = workdir / ".jax_cache"
  cache_compiled_programs(cache)
  names = sorted(experiment_names(), key=lambda n: (n not in SLOWEST_FIRST,
                                                    SLOWEST_FIRST.index(n)
                                                    if n in SLOWEST_FIRST else 0, n))
  runs = [(seed, name, workdir / name if tuple(seeds) == (0,) else workdir / f"seed{seed}" / name)
          for seed in seeds for name in names]
  results, failures = {}, 0
  with _executor(jobs) as pool:
    futures = {pool.submit(_smoke_run, name, run_dir,
                           seed_overrides(name, seed) + (quiet_overrides(name) if jobs > 1 else []),
                           cache):
               (seed, name) for seed, name, run_dir in runs}
    for future in concurrent.futures.as_completed(futures):
      seed, name = futures[future]
      report, seconds, cpu = results[seed, name] = future.result()
      failures += report is None or not report.passed
      status = ("ERROR" if report is None else
                f"{sum(report.checks.values())}/{len(report.checks)} checks passed")
      print(f"demo: {name} seed {seed}: {seconds:.0f} s (CPU {cpu:.0f} s), {status}", flush=True)
  rows, sections, html_sections = [], [], []
  for seed, name, run_dir in sorted(runs, key=lambda run: run[:2]):
    report, seconds, cpu = results[seed, name]
    rows.append(_summary_row(name, seed, report, seconds, cpu))
    if report is not None:
      prefix = run_dir.relative_to(workdir).as_posix() + "/"
      sections.append(report.markdown(heading="##", figure_prefix=prefix))
      html_sections.append(report.html(run_dir))
  summary = Table("Smoke runs", ["experiment", "seed", "paper claim", "ours", "paper", "result",
                                 "seconds", "CPU seconds"], rows)
  title = "jspectral demo: every experiment's smoke preset"
  (workdir / "REPORT.md").write_text(f"# {title}\n\n{summary.markdown()}\n\n" +
                                     "\n".join(sections))
  (workdir / "index.html").write_text(html_page(title, summary.html() + "\n".join(html_sections)))
  print(f"report: {workdir / 'REPORT.md'}\nreport (HTML, figures embedded): "
        f"{workdir / 'index.html'}", flush=True)
  return 1 if failures else 0


def _executor(jobs: int) -> concurrent.futures.Executor:
  """One in-process worker for ``jobs == 1``; otherwise fresh spawned processes, one per run."""
  if jobs == 1:
    return concurrent.futures.ThreadPoolExecutor(max_workers=1)
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several jobs share a device
  return concurrent.futures.ProcessPoolExecutor(
      max_workers=jobs, mp_context=multiprocessing.get_context("spawn"), max_tasks_per_child=1,
      initializer=_quiet_worker)


def _quiet_worker():
  """A parallel demo worker: no TFDS preparation bars (they would interleave with the others')."""
  import tensorflow_datasets as tfds  # noqa: PLC0415  (only worker processes need it here)

  tfds.disable_progress_bar()


def _smoke_run(name: str, run_dir: pathlib.Path, overrides: list[str],
               cache: pathlib.Path) -> tuple[Report | None, float, float]:
  """One demo run: its report (None when it raised; the traceback is printed), its wall seconds
  and this process's CPU seconds during the run (all threads; a worker runs nothing else)."""
  cache_compiled_programs(cache)
  start, cpu = time.perf_counter(), time.process_time()
  try:
    report = run_experiment(name, "smoke", run_dir, overrides)
  except Exception:  # noqa: BLE001  (one broken experiment must not hide the others)
    traceback.print_exc()
    report = None
  return report, time.perf_counter() - start, time.process_time() - cpu


def _summary_row(name: str, seed: int, report: Report | None, seconds: float,
                 cpu: float) -> list:
  if report is None:
    return [name, seed, "", "", "", "ERROR (see the log)", f"{seconds:.0f}", f"{cpu:.0f}"]
  failed = [k for k, ok in report.checks.items() if not ok]
  result = "pass" if not failed else "FAIL: " + "; ".join(failed)
  headline = report.headline or Headline("; ".join(report.checks), "see its report")
  return [name, seed, headline.claim, headline.ours, headline.paper or "–", result,
          f"{seconds:.0f}", f"{cpu:.0f}"]


def data_list() -> int:
  """Prints every dataset, where its files go and whether they are there."""
  from jspectral.data import builders

  print(builders.format_catalog(builders.catalog()))
  return 0


def key_meanings(name: str) -> dict[str, str]:
  """One-line meanings of config keys: the engine's documented fields, then the trailing
  ``# comment`` of each assignment in the experiment's config module and in
  ``experiments/common.py`` (last key part -> text)."""
  from experiments import common
  from jspectral.train import CONFIG_FIELDS

  meanings = {f"train.{k}": v for k, v in CONFIG_FIELDS.items()}
  for module in (load(name), common):
    source = inspect.getsource(module)
    for match in re.finditer(r"(?:\.|\b)(\w+)\s*=[^=\n][^\n#]*#\s*([^\n]+)", source):
      meanings.setdefault(match.group(1), match.group(2).strip())
  return meanings


def print_config(name: str, preset: str, overrides: list[str]) -> int:
  """Prints every key of the experiment's config with its value and, where known, its meaning."""
  config = build_config(name, preset, overrides)
  meanings = key_meanings(name)
  items = flat_items(config)
  width = max(len(k) for k, _ in items)
  value_width = min(max(len(repr(v)) for _, v in items), 24)
  for key, value in items:
    tail = key.split(".")[-1]
    meaning = meanings.get(key) or meanings.get(re.sub(r"^[^.]+\.", "train.", key)) \
        or meanings.get(tail, "")
    line = f"{key:{width}s} = {value!r:{value_width}s}"
    print(f"{line}  # {meaning}" if meaning else line.rstrip())
  return 0


def _seeds(text: str) -> list[int]:
  try:
    return [int(s) for s in text.split(",")]
  except ValueError:
    raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m experiments", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  sub.add_parser("list", help="list the experiments with their one-line descriptions")
  run = sub.add_parser("run", help="run one experiment (resumes when the workdir holds its run)")
  run.add_argument("name", help="experiment name (python -m experiments list)")
  run.add_argument("--preset", default="smoke",
                   help="smoke: minutes on a CPU, no downloads; paper: the paper's recipe; "
                        "paper:VARIANT: one of the paper's other tables (python -m experiments "
                        "list shows them)")
  run.add_argument("--workdir", type=pathlib.Path, required=True,
                   help="run directory: config.json, metrics, checkpoints, report.md, figures")
  run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override an existing config key (repeatable; python -m experiments "
                        "config NAME lists the keys)")
  policy = run.add_mutually_exclusive_group()
  policy.add_argument("--restart", action="store_true",
                      help="start a new run in a workdir that holds one (its files move to "
                           "WORKDIR/previous/<time>/, nothing is deleted)")
  policy.add_argument("--resume-with-changes", action="store_true",
                      help="resume a run whose config changed (keys that keep parameter shapes)")
  config = sub.add_parser("config", help="print every config key with its value and meaning")
  config.add_argument("name", help="experiment name")
  config.add_argument("--preset", default="smoke",
                      help="which preset (smoke, paper, paper:VARIANT)")
  config.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override a key before printing (repeatable)")
  demo_parser = sub.add_parser("demo", help="run every smoke preset, write REPORT.md")
  demo_parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("runs/demo"),
                           help="where the runs, REPORT.md and index.html go")
  demo_parser.add_argument("--seeds", default="0", type=_seeds,
                           help="comma-separated seeds, e.g. 0,1,2: each shifts every training "
                                "seed of each smoke config (0 = the presets as they are)")
  demo_parser.add_argument("--jobs", default=2, type=int,
                           help="worker processes running smoke presets side by side (default 2: "
                                "the demo's 2-core budget; 1 runs them in this process)")
  data = sub.add_parser("data", help="datasets: where their files go, whether they are there")
  data.add_argument("action", choices=["list"], help="list every dataset")
  return parser


def main(argv: list[str] | None = None) -> int:
  args = _parser().parse_args(argv)
  try:
    if args.command == "list":
      for name in experiment_names():
        doc = " ".join((load(name).__doc__ or "").strip().split("\n\n")[0].split())
        print(f"{name:28s} {doc}")
        for variant, description in getattr(load(name), "PAPER_VARIANTS", {}).items():
          print(f"{'':28s}   --preset paper:{variant}: {description}")
      return 0
    if args.command == "config":
      return print_config(args.name, args.preset, args.overrides)
    if args.command == "run":
      report = run_experiment(args.name, args.preset, args.workdir, args.overrides,
                              restart=args.restart,
                              resume_with_changes=args.resume_with_changes)
      print(report.markdown())
      return 0 if report.passed else 1
    if args.command == "demo":
      return demo(args.workdir, args.seeds, args.jobs)
    return data_list()
  except CliError as error:
    print(f"error: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
