"""Graph SSL, node level: edge dropping vs SPAN spectral views in four frameworks, over seeds.

Jian et al., "Rethinking Spectral Augmentation for Contrast-based Graph Self-Supervised Learning"
(arXiv 2405.19600): edge dropping matches or beats spectral augmentation at a fraction of its
cost. Smoke: a 300-node stochastic block model (CPU, no download), small GRACE, probe accuracy of
each augmentation against a random-init encoder over two training seeds, and the cost table for
N = 100 .. 1000. Paper (``paper`` = Cora; the other datasets in :data:`PAPER_VARIANTS`): the
dataset's TFDS builder, GRACE with its official recipe (CRIPAC-DIG/GRACE ``config.yaml`` for
Cora / CiteSeer / PubMed / DBLP; CRIPAC-DIG/GCA ``param/*.json`` with GRACE's uniform edge
dropping for Amazon / Coauthor), torch ``Adam(weight_decay=1e-5)`` as coupled L2, and the other
frameworks the paper compares (MVGRL, BGRL, graph Barlow Twins) with each augmentation; five
training seeds, PyGCL's logistic-regression evaluator, mean and std over seeds.
"""

from __future__ import annotations

import itertools
import pathlib

import jax
import ml_collections
import numpy as np

from experiments.common import check_source, seed_cells, split_preset
from experiments.report import Headline, Report, Table, save_loss_curve
from jspectral import train
from jspectral.data import synthetic_graphs
from jspectral.graph import cost, encoders, figures, tasks

# dataset -> (data source, GRACE recipe: lr, H, P, activation, pe1, pe2, pf1, pf2, tau, epochs).
# Cora / CiteSeer / PubMed / DBLP: GRACE config.yaml (all Adam weight_decay 1e-5). Amazon /
# Coauthor: GCA's param/*.json (GRACE's authors; GRACE has no recipe for them; weight_decay 1e-5),
# run with GRACE's uniform edge dropping.
DATASETS = {
    "cora": ("planetoid", (5e-4, 128, 128, "relu", 0.2, 0.4, 0.3, 0.4, 0.4, 200)),
    "citeseer": ("planetoid", (1e-3, 256, 256, "prelu", 0.2, 0.0, 0.3, 0.2, 0.9, 200)),
    "pubmed": ("planetoid", (1e-3, 256, 256, "relu", 0.4, 0.1, 0.0, 0.2, 0.7, 1500)),
    "dblp": ("amazon_coauthor", (1e-3, 256, 256, "relu", 0.1, 0.4, 0.1, 0.0, 0.7, 1000)),
    "computers": ("amazon_coauthor", (1e-2, 128, 128, "rrelu", 0.6, 0.3, 0.2, 0.3, 0.2, 2000)),
    "photo": ("amazon_coauthor", (1e-1, 256, 64, "relu", 0.3, 0.5, 0.1, 0.1, 0.3, 2000)),
    "cs": ("amazon_coauthor", (5e-4, 256, 256, "rrelu", 0.3, 0.2, 0.3, 0.4, 0.4, 1000)),
    "physics": ("amazon_coauthor", (1e-2, 128, 64, "rrelu", 0.4, 0.1, 0.1, 0.4, 0.5, 1500)),
}
SMOKE_RECIPE = (1e-3, 32, 32, "relu", 0.2, 0.4, 0.3, 0.4, 0.5, 100)
PAPER_VARIANTS = {
    "citeseer": "CiteSeer (Planetoid): GRACE config.yaml (H 256, PReLU, tau 0.9, 200 epochs)",
    "pubmed": "PubMed (Planetoid): GRACE config.yaml (H 256, tau 0.7, 1500 epochs)",
    "dblp": "DBLP (CitationFull dblp.npz): GRACE config.yaml (H 256, tau 0.7, 1000 epochs)",
    "computers": "Amazon-Computers (gnn-benchmark npz): GCA param (H 128, RReLU, 2000 epochs)",
    "photo": "Amazon-Photo (gnn-benchmark npz): GCA param (H 256, P 64, lr 0.1, 2000 epochs)",
    "cs": "Coauthor-CS (gnn-benchmark npz): GCA param (H 256, RReLU, 1000 epochs)",
    "physics": "Coauthor-Physics (gnn-benchmark npz): GCA param (H 128, P 64, 1500 epochs)",
}
# GRACE paper, micro-F1 % (edge dropping + feature masking); the comparison paper's own table
# could not be retrieved (spec section 7).
PAPER = {"cora": 83.3, "citeseer": 72.1, "pubmed": 86.7, "dblp": 84.2}
# Other frameworks: hidden width, Adam lr, epochs, linear warm-up epochs (then cosine to 0).
# MVGRL: GCL-SPAN unsupervised_node.py (h512, lr 1e-4, 200 epochs); BGRL: PyGCL BGRL_L2L.py (h256,
# lr 1e-2, 100 epochs, EMA 0.99); G-BT: PyGCL GBT.py (h256, lr 5e-4, 4000 epochs, warm-up 400 +
# cosine). Each is run with the dataset's GRACE drop rates.
FRAMEWORK_RECIPES = {
    "mvgrl": dict(hidden=512, lr=1e-4, epochs=200, warmup=0),
    "bgrl": dict(hidden=256, lr=1e-2, epochs=100, warmup=0),
    "gbt": dict(hidden=256, lr=5e-4, epochs=4000, warmup=400),
}
MODELS = {"mvgrl": encoders.MVGRLNode, "bgrl": encoders.BGRL, "gbt": encoders.GBTEncoder}
TASKS = {"grace": tasks.NodeContrastTask, "mvgrl": tasks.MVGRLNodeTask, "bgrl": tasks.BGRLTask,
         "gbt": tasks.GBTTask}


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  """``smoke``, ``paper`` (Cora) or ``paper:<dataset>`` (:data:`PAPER_VARIANTS`)."""
  base, variant = split_preset(preset, PAPER_VARIANTS)
  smoke = base == "smoke"
  name = "sbm" if smoke else (variant or "cora")
  source, recipe = ("synthetic", SMOKE_RECIPE) if smoke else DATASETS[name]
  lr, hidden, proj, act, pe1, pe2, pf1, pf2, tau, epochs = recipe
  c = ml_collections.ConfigDict()
  c.preset = preset
  # synthetic: the SBM; planetoid / amazon_coauthor: the TFDS builders (data_dir "" = default,
  # manual files under $JSPECTRAL_MANUAL_DIR/<builder>)
  c.data = ml_collections.ConfigDict(dict(source=source, name=name, data_dir=""))
  c.grace = ml_collections.ConfigDict(dict(
      hidden=hidden, proj_hidden=proj, activation=act, drop_edge=[pe1, pe2],
      drop_feature=[pf1, pf2], tau=tau, epochs=epochs))
  c.frameworks = ["grace"] if smoke else ["grace", "mvgrl", "bgrl", "gbt"]
  c.recipes = ml_collections.ConfigDict(FRAMEWORK_RECIPES)
  # span_l2 (eigvalsh objectives) is dense only: it runs where the dense SPAN does (Cora, CiteSeer)
  c.augmentations = (["edge_drop", "span", "span_l2"] if name in ("cora", "citeseer")
                     else ["edge_drop", "span"])
  # SPAN's support: "dense" (official, O(N^2)), "sparse" (every edge plus random_per_edge random
  # candidate pairs per edge, O(E)) or "auto" (dense up to tasks.SPAN_DENSE_MAX_NODES = 4096
  # nodes: Cora, CiteSeer; sparse for PubMed, Amazon, Coauthor). span_l2 is dense only.
  c.span = ml_collections.ConfigDict(dict(support="auto", random_per_edge=1.0))
  c.seeds = [0, 1] if smoke else [0, 1, 2, 3, 4]  # training seeds: one run (and split) each
  # pygcl: PyGCL LREvaluator (JAX); grace: GRACE's scikit-learn protocol
  c.probe = ml_collections.ConfigDict(dict(
      protocol="pygcl", train_fraction=0.1, val_fraction=0.8,
      weight_decays=[0.0, 1e-3, 5e-3, 1e-2, 0.1],  # GCL-SPAN unsupervised_node.py sweep
      epochs=5000, learning_rate=0.01, test_interval=20))
  c.cost_sizes = [100, 300, 1000] if smoke else [100, 300, 1000, 3000, 10000]
  c.cost_eigvalsh_max_n = 100 if smoke else 3000
  c.checks = True  # False: report without the pass/fail checks (dry runs cut to a few steps)
  c.train = train.default_config()
  # total_steps 0: each framework's epochs (full batch: one step per epoch)
  c.train.update(total_steps=100 if smoke else 0, batch_size=1, log_every=10,
                 checkpoint_every=1000, progress=False)
  c.train.optimizer.update(name="adam_l2", learning_rate=lr, weight_decay=1e-5)
  return c


def _views(aug: str, pe, pf) -> tuple[tasks.View, tasks.View]:
  if aug == "edge_drop":
    return tasks.View("drop_edges", pe[0], pf[0]), tasks.View("drop_edges", pe[1], pf[1])
  if aug == "span":  # SPAN node defaults: 'max' and 'min' views, each feature-masked with 0.4
    return tasks.View("span_max", 0.0, 0.4), tasks.View("span_min", 0.0, 0.4)
  if aug == "span_l2":  # SPAN's spectrum-distance objectives (eigvalsh), same budget and lr
    return tasks.View("span_max_l2", 0.0, 0.4), tasks.View("span_min_l2", 0.0, 0.4)
  raise ValueError(f"augmentations: unknown {aug!r}; expected 'edge_drop', 'span' or 'span_l2'")


def _load(config):
  """``(graph, labels)`` of ``config.data.name`` from ``config.data.source``."""
  data = config.data
  source = check_source(config, "synthetic", "planetoid", "amazon_coauthor")
  if source == "synthetic":
    if data.name != "sbm":
      raise ValueError(f"data.name: the synthetic source has 'sbm' only, got {data.name!r}")
    return synthetic_graphs.sbm_graph(0)
  from jspectral.data.builders import amazon_coauthor, planetoid

  module = planetoid if source == "planetoid" else amazon_coauthor
  return module.load(data.name, data.data_dir or None)


def _framework(config, framework: str):
  """``(model, train config)`` of ``framework`` (GRACE: the dataset recipe in ``config.grace``)."""
  fw_config = config.train.copy_and_resolve_references()
  if framework == "grace":
    g = config.grace
    fw_config.total_steps = config.train.total_steps or g.epochs
    return encoders.GRACE(g.hidden, g.proj_hidden, activation=g.activation), fw_config
  recipe = config.recipes[framework]
  fw_config.optimizer.learning_rate = recipe.lr
  fw_config.total_steps = config.train.total_steps or recipe.epochs
  if recipe.warmup:
    fw_config.schedule.update(name="warmup_cosine", warmup_steps=min(
        recipe.warmup, fw_config.total_steps - 1), min_lr_ratio=0.0)
  return MODELS[framework](recipe.hidden), fw_config


def _probe(config, seed: int) -> dict:
  return {**config.probe.to_dict(), "seeds": (seed,)}


def _train_seeds(config, framework: str, aug: str, graph, labels, workdir: pathlib.Path):
  """Accuracies (one per training seed) and the first seed's loss history."""
  g = config.grace
  views = _views(aug, g.drop_edge, g.drop_feature)
  model, fw_config = _framework(config, framework)
  kwargs = dict(tau=g.tau) if framework == "grace" else {}
  accs, history = [], []
  # SPAN probabilities are precomputed once per run (as GCL-SPAN caches them); each seed trains
  # and probes anew
  task = TASKS[framework](graph, labels, model, views, span_seed=config.seeds[0],
                          span_support=config.span.support,
                          span_random_per_edge=config.span.random_per_edge, **kwargs)
  for seed in config.seeds:
    fw_config.seed = seed
    task.probe = _probe(config, seed)
    result = train.fit(task, fw_config, workdir / f"{framework}_{aug}_seed{seed}")
    accs.append(result.evals["eval/accuracy"])
    history = history or result.history
  return accs, history


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  name, g = config.data.name, config.grace
  graph, labels = _load(config)
  seeds = list(config.seeds)
  baseline = []
  model = encoders.GRACE(g.hidden, g.proj_hidden, activation=g.activation)
  for seed in seeds:
    random_task = tasks.NodeContrastTask(graph, labels, model, _views(
        "edge_drop", g.drop_edge, g.drop_feature), g.tau, probe=_probe(config, seed))
    params, _ = random_task.init(jax.random.key(seed), None)
    baseline.append(random_task.evaluate(params, {})["accuracy"])
  rows = [[name, "grace", "random-init encoder", *seed_cells(baseline), "-"]]
  checks, histories = {}, {}
  for framework, aug in itertools.product(config.frameworks, config.augmentations):
    accs, histories[f"{framework} {aug}"] = _train_seeds(config, framework, aug, graph, labels,
                                                         workdir)
    paper = PAPER.get(name, "-") if (framework, aug) == ("grace", "edge_drop") else "n/a"
    rows.append([name, framework, aug, *seed_cells(accs), paper])
    checks[f"{name}: {framework} with {aug} learns node features without labels: mean probe "
           "accuracy > random-init encoder's"] = (
        np.mean(accs) > np.mean(baseline))
  sizes = list(config.cost_sizes)
  costs = [cost.augmentation_costs(n, with_eigvalsh=n <= config.cost_eigvalsh_max_n)
           for n in sizes]
  figures.save_cost_plot(workdir / "augmentation_cost.png", sizes, costs,
                         f"augmentation cost per call ({config.preset})")
  save_loss_curve(workdir / "loss.png", histories)
  methods = ["drop_edges", "add_edges", "span_precompute", "span_sample",
             "span_precompute_eigvalsh", "span_l2_precompute"]
  cost_rows = [[n] + [_cost_cell(c.get(m)) for m in methods] for n, c in zip(sizes, costs,
                                                                              strict=True)]
  checks["spectral augmentation costs more: SPAN's precomputation is slower than edge "
         "dropping at the largest N"] = (
      costs[-1]["span_precompute"][0] > 10 * costs[-1]["drop_edges"][0])
  probe = config.probe
  notes = [f"{config.preset} preset on {name}: {config.train.total_steps or 'recipe'} steps per "
           f"run; one training run and one probe split per seed {seeds}; mean ± std over the "
           "seeds.",
           f"Probe: {probe.protocol} protocol" + (
               f" (PyGCL LREvaluator: Adam lr {probe.learning_rate}, {probe.epochs} epochs, "
               f"scored every {probe.test_interval}, weight decays {list(probe.weight_decays)}; "
               f"split {probe.train_fraction:.0%} train / {probe.val_fraction:.0%} validation / "
               "rest test as PyGCL's get_split(0.1, 0.8) slices it)"
               if probe.protocol == "pygcl" else "") + ".",
           "Paper column: GRACE's published micro-F1 (edge dropping + feature masking; GRACE's "
           "own protocol); the comparison paper's own table could not be retrieved (spec "
           "section 7). Smoke numbers come from a synthetic SBM."]
  return Report(
      title=f"Graph SSL node level: edge dropping vs SPAN ({config.preset})",
      tables=[Table("Linear-probe accuracy (%) per framework and augmentation, per seed",
                    ["dataset", "framework", "augmentation", *[f"seed {s}" for s in seeds],
                     "mean ± std", "paper"], rows),
              Table("Augmentation cost per call: seconds / MiB (XLA buffers)",
                    ["N", *methods], cost_rows,
                    note="span_precompute: T=40 projected-gradient steps (Frobenius form); "
                         "span_precompute_eigvalsh: official per-step eigendecomposition; "
                         "span_l2_precompute: the spectrum-distance objective (always "
                         "eigvalsh).")],
      figures=["augmentation_cost.png", "loss.png"], checks=checks if config.checks else {},
      notes=notes, headline=_headline(name, rows))


def _headline(name: str, rows) -> Headline:
  """Every framework and view against the random-init encoder, mean probe accuracy."""
  trained = "; ".join(f"{fw} {aug} {row[-2]}" for _, fw, aug, *row in rows[1:])
  return Headline("contrastive pre-training (edge dropping, SPAN views) beats a random-init "
                  "encoder on the linear probe (accuracy %, mean ± std over seeds)",
                  f"{trained}; random init {rows[0][-2]}",
                  f"GRACE {PAPER[name]} ({name})" if name in PAPER else "")


def _cost_cell(value) -> str:
  if value is None:
    return "-"
  seconds, memory = value
  mib = "?" if memory is None else f"{memory / 2**20:.2f}"
  return f"{seconds:.2e} s / {mib}"
