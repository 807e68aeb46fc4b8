"""rho-PNN zero-shot pansharpening (Guarino et al., IEEE TGRS 2025).

Smoke: a synthetic reduced-resolution scene (Wald protocol on a linear-mixing cube, 6 bands),
short pre-training and per-band tuning on CPU. Paper: every PRISMA test scene of the toolbox
(``jspectral.data.builders.prisma``) at reduced resolution (official RR hyper-parameters; ERGAS,
SAM, Q, Q2n with the 10/11 px crop, plus D_rho) and at full resolution (official FR
hyper-parameters; D_lambda (Khan), D_s with rho-PNN's bicubic-resized PAN, D_sR, D_rho, HQNR:
``jspectral.pansharpening.protocol.evaluation_rho_pnn_fr``). The local correlation of the
spatial loss runs in float64 (``rho.float64_correlation``) as in the official code. FR salient
tiles (MobileNetV3 + k-means in the official code) are not computed: ``fr_tile_indices`` lists
the tuning tiles (None: all).
"""

from __future__ import annotations

import dataclasses
import pathlib
import time

import jax
import matplotlib
import ml_collections
import numpy as np

from experiments.common import check_source
from experiments.report import Headline, Report, Table
from jspectral.data import wald
from jspectral.metrics import pansharpening as indices
from jspectral.pansharpening import protocol as ps_protocol
from jspectral.pansharpening import rho_pnn

matplotlib.use("Agg")

# arXiv 2505.16658 tables were not retrieved (spec: [unverified]); no paper numbers to show.
PAPER_NOTE = "paper numbers: not available offline (spec marks the paper tables unverified)"


def get_config(preset: str = "smoke") -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict()
  c.preset = preset
  # synthetic: a Wald-protocol scene drawn with seed; prisma: the toolbox's PRISMA test scenes
  # (TFDS builder; "" directories are the defaults)
  c.data = ml_collections.ConfigDict(dict(source={"smoke": "synthetic", "paper": "prisma"}[preset],
                                          manual_dir="", data_dir=""))
  c.train = ml_collections.ConfigDict(dict(seed=0))     # --set train.seed=N
  c.bands = {"smoke": 6, "paper": 159}[preset]
  c.lr_size = {"smoke": 32, "paper": 100}[preset]
  c.crop = {"smoke": 16, "paper": None}[preset]
  c.ratio = 6
  # Protocols run (smoke: RR only, CPU time) and how many test scenes (None: all).
  c.protocols = {"smoke": ["rr"], "paper": ["rr", "fr"]}[preset]
  c.scenes = None
  c.fr_tile_indices = None                      # FR tuning tiles (official: 4 salient ones)
  c.rho = ml_collections.ConfigDict(dict(
      # Smoke: lr 4e-4 and 30 stage-A epochs keep every band's Q above EXP's for seeds 0-5
      # (2e-4 and 20: band gains down to -0.022 at seed 5; docs/pansharpening.md).
      learning_rate={"smoke": 4e-4, "paper": 1e-5}[preset],
      pretrain_epochs={"smoke": 30, "paper": 300}[preset],
      # Smoke: one 96-px tile (the 61-tap valid spectral loss needs tiles of >= 66 px).
      pretrain_tile={"smoke": 96, "paper": 90}[preset],
      eta={"smoke": 0.5, "paper": 30.0}[preset],
      ns={"smoke": 3, "paper": 5}[preset], gamma=0.62, gamma_l=0.90, beta_0=1.0, epsilon=1.003,
      float64_correlation=True))
  # The official FR set (config_dict.py hp_fr); the pre-training tile is 120 px.
  c.rho_fr = ml_collections.ConfigDict(dict(gamma=0.65, gamma_l=0.90, beta_0=2.0, epsilon=1.007,
                                            ns=20, eta=30.0, pretrain_tile=120))
  return c


def _scenes(config, protocol: str) -> list[dict]:
  """The scenes of one protocol (``"rr"`` / ``"fr"``) from ``config.data.source``.

  PRISMA scenes keep their first ``config.bands`` bands (159: all; fewer only to cut a dry run).
  """
  if check_source(config, "synthetic", "prisma") == "prisma":
    from jspectral.data.builders import prisma
    return prisma.load_scenes(protocol, "test", manual_dir=config.data.manual_dir or None,
                              data_dir=config.data.data_dir or None,
                              bands=config.bands)[:config.scenes]
  s = wald.synthetic_rr_scene(jax.random.key(config.train.seed), config.lr_size,
                              config.bands, config.ratio, crop=config.crop)
  s = {k: np.asarray(v) for k, v in s.items()}
  return [s if protocol == "rr" else {k: s[k] for k in ("pan", "hs_lr", "hs_up")}]


def _rho_config(config, protocol: str) -> rho_pnn.RhoPNNConfig:
  base = rho_pnn.RhoPNNConfig(ratio=config.ratio, **config.rho.to_dict())
  return base if protocol == "rr" else dataclasses.replace(base, **config.rho_fr.to_dict())


def _fuse(config, scene, protocol):
  result = rho_pnn.fuse(scene["hs_lr"], scene["hs_up"], scene["pan"][..., 0],
                        _rho_config(config, protocol), rng=jax.random.key(config.train.seed),
                        tile_indices=config.fr_tile_indices if protocol == "fr" else None)
  return result, np.asarray(result.fused, np.float64) * rho_pnn.NORMALISATION


def _means(scores: dict[str, list[dict]]):
  return lambda name, key: float(np.mean([s[key] for s in scores[name]]))


def _mean_rows(scores: dict[str, list[dict]], keys) -> list[list]:
  return [[name] + [float(np.mean([s[k] for s in per_scene])) for k in keys]
          for name, per_scene in scores.items()]


def run(config: ml_collections.ConfigDict, workdir: pathlib.Path) -> Report:
  unknown = set(config.protocols) - {"rr", "fr"}
  if unknown or not config.protocols:
    raise ValueError(f"config.protocols: expected a non-empty subset of ['rr', 'fr'], "
                     f"got {list(config.protocols)}")
  tables, checks, notes, figures = [], {}, [], []
  seconds, iterations = 0.0, 0
  tag = f"{config.bands} bands ({config.preset})"
  if "rr" in config.protocols:
    rr_keys = ("ERGAS", "SAM", "Q", "Q2n", "D_rho")
    scores = {"EXP": [], "rho-PNN": []}
    for i, scene in enumerate(_scenes(config, "rr")):
      start = time.perf_counter()
      result, fused = _fuse(config, scene, "rr")
      seconds, iterations = seconds + time.perf_counter() - start, iterations + int(
          result.iterations.sum())
      gt, exp = np.asarray(scene["gt"], np.float64), np.asarray(scene["hs_up"], np.float64)
      pan = np.asarray(scene["pan"], np.float64)
      for name, image in (("EXP", exp), ("rho-PNN", fused)):
        rr = {k: float(v) for k, v in ps_protocol.evaluation_rho_pnn_rr(image, gt,
                                                                       config.ratio).items()}
        rr["D_rho"] = float(indices.d_rho(image, pan, config.ratio))
        scores[name].append(rr)
      if i == 0:
        tables.append(_band_table(result, gt, exp, fused))
        q_exp, q_rho = np.asarray([row[-2:] for row in tables[-1].rows]).T
        _plot_bands(workdir / "per_band.png", gt, exp, fused, pan, config.ratio, result)
        _plot_panel(workdir / "fused.png", gt, exp, fused, pan)
        figures += ["per_band.png", "fused.png"]
    n = len(scores["EXP"])
    tables.insert(0, Table(f"Reduced resolution, mean of {n} scene(s), {tag}",
                           ["method", "ERGAS", "SAM (deg)", "Q", "Q2n", "D_rho"],
                           _mean_rows(scores, rr_keys), note=PAPER_NOTE))
    mean = _means(scores)
    better = lambda key, sign=1: sign * mean("rho-PNN", key) < sign * mean("EXP", key)
    checks["rho-PNN sharpens better than EXP: RR ERGAS below EXP's"] = better("ERGAS")
    # SAM is reported, not checked: at smoke scale its margin over EXP is below its seed spread
    # (seed 0: +0.12 / -0.02 deg with YNNPACK / Eigen convolutions; seeds 1-2: 0.4-0.6 deg).
    checks["rho-PNN's quality is uniform across bands: RR Q above EXP's in every band (first "
           "scene)"] = bool(np.all(q_rho > q_exp))
    checks["rho-PNN sharpens better than EXP: RR Q2n above EXP's"] = better("Q2n", -1)
    checks["rho-PNN follows the PAN's local detail: RR D_rho below EXP's"] = better("D_rho")
  if "fr" in config.protocols:
    fr_keys = ("D_lambda", "D_s", "D_sR", "D_rho", "HQNR")
    scores = {"EXP": [], "rho-PNN": []}
    for scene in _scenes(config, "fr"):
      start = time.perf_counter()
      result, fused = _fuse(config, scene, "fr")
      seconds, iterations = seconds + time.perf_counter() - start, iterations + int(
          result.iterations.sum())
      for name, image in (("EXP", np.asarray(scene["hs_up"], np.float64)), ("rho-PNN", fused)):
        scores[name].append({k: float(v) for k, v in ps_protocol.evaluation_rho_pnn_fr(
            image, scene["pan"], scene["hs_lr"], config.ratio).items()})
    n = len(scores["EXP"])
    tables.append(Table(f"Full resolution (rho-PNN protocol), mean of {n} scene(s), {tag}",
                        ["method", "D_lambda", "D_s", "D_sR", "D_rho", "HQNR"],
                        _mean_rows(scores, fr_keys), note=PAPER_NOTE))
    mean = _means(scores)
    checks["rho-PNN follows the PAN's local detail at full resolution: FR D_rho below EXP's"] = (
        mean("rho-PNN", "D_rho") < mean("EXP", "D_rho"))
    notes.append("FR tuning tiles: " + ("all 300-px tiles (the official 4 salient tiles need "
                                         "MobileNetV3 ImageNet weights)"
                                         if config.fr_tile_indices is None else
                                         f"{list(config.fr_tile_indices)}"))
  notes += [f"zero-shot fusion took {seconds:.1f} s in all (incl. compilation), {iterations} "
            "tuning iterations; spatial-loss correlation in "
            + ("float64" if config.rho.float64_correlation else "float32"),
            "smoke: synthetic linear-mixing scene, PAN = band mean, shortened pre-training and "
            "budgets; numbers are not comparable with the paper"
            if config.data.source == "synthetic" else
            "paper recipe (official RR / FR hyper-parameters, every test scene)"]
  return Report(title="rho-PNN: zero-shot hyperspectral pansharpening", tables=tables,
                figures=figures, checks=checks, notes=notes, headline=_headline(tables[0]))


def _headline(table: Table) -> Headline:
  """rho-PNN against EXP on the first protocol's mean table (ERGAS / SAM at RR, D_rho at FR)."""
  rows = {row[0]: dict(zip(table.header[1:], row[1:], strict=True)) for row in table.rows}
  keys = [k for k in ("ERGAS", "SAM (deg)", "D_rho") if k in table.header]
  return Headline("zero-shot rho-PNN improves on the interpolated EXP baseline",
                  ", ".join(f"{k} {rows['rho-PNN'][k]:.3f} vs {rows['EXP'][k]:.3f}" for k in keys)
                  + " (EXP)")


def _band_table(result, gt, exp, fused) -> Table:
  q = {n: np.asarray(indices.q_per_band(im, gt, 16)) for n, im in (("EXP", exp),
                                                                   ("rho-PNN", fused))}
  return Table("Per band (first RR scene)",
               ["band", "iterations", "budget", "spatial-active", "beta", "Q EXP", "Q rho-PNN"],
               [[b, int(result.iterations[b]), int(result.max_iter[b]),
                 int(result.spatial_active[b]), float(result.beta_adapt[b]),
                 float(q["EXP"][b]), float(q["rho-PNN"][b])]
                for b in range(len(result.iterations))])


def _d_rho_per_band(image, pan, ratio):
  rho = indices.local_correlation(image[None], pan[None], ratio // 2, clip="none")
  return np.asarray(np.mean(1.0 - np.clip(rho, -1, 1), axis=(0, 1, 2)))


def _plot_bands(path, gt, exp, fused, pan, ratio, result):
  import matplotlib.pyplot as plt

  images = (("EXP", exp), ("rho-PNN", fused))
  q_bands = {n: np.asarray(indices.q_per_band(im, gt, 16)) for n, im in images}
  d_rho_bands = {n: _d_rho_per_band(im, pan, ratio) for n, im in images}
  fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
  for name in q_bands:
    axes[0].plot(q_bands[name], marker="o", label=name)
    axes[1].plot(d_rho_bands[name], marker="o", label=name)
  axes[0].set_title("per-band Q (higher is better)")
  axes[1].set_title("per-band D_rho (lower is better)")
  axes[2].bar(np.arange(len(result.iterations)), result.iterations, label="run")
  axes[2].plot(result.max_iter, "k_", markersize=12, label="budget")
  axes[2].set_title("tuning iterations per band")
  for ax in axes:
    ax.set_xlabel("band")
    ax.legend()
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)


def _plot_panel(path, gt, exp, fused, pan):
  import matplotlib.pyplot as plt

  band = gt.shape[-1] // 2
  images = [("PAN", pan[..., 0]), ("EXP", exp[..., band]), ("rho-PNN", fused[..., band]),
            ("GT", gt[..., band])]
  lo, hi = np.percentile(gt[..., band], [1, 99])
  fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
  for ax, (title, image) in zip(axes, images, strict=True):
    ax.imshow(image, cmap="gray", vmin=lo if title != "PAN" else None,
              vmax=hi if title != "PAN" else None)
    ax.set_title(f"{title} (band {band})" if title != "PAN" else title)
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
