"""Side by side with the official code: the official half (PyTorch; not a jspectral dependency).

Run with a Python that has torch (and numpy, scipy), never inside the package::

  /path/to/torch-venv/bin/python benchmarks/versus_official.py --mirrors DIR [--cases A B]

``DIR`` holds the official repositories as ``owner+name`` (a checkout, or a bare git directory
``owner+name`` / ``owner+name/repo`` whose Python files are exported): Rexzhan+ESSAformer,
giu-guarino+rho-PNN, matciotola+hyperspectral_pansharpening_toolbox, winci-ai+INTL,
Zeqiang-Lai+HSDT, bit-isp+HSIR. The cases and
their shapes are those of ``benchmarks/versus.py`` (same names); each builds the official module,
loss and optimiser and times one train step (``zero_grad``, forward, loss, ``backward``,
``step``) and one inference call (``eval`` + ``no_grad``) with ``torch.set_num_threads(2)``,
float32. Memory: the process's max RSS and the torch profiler's peak of live CPU allocations
during one train step. Writes ``benchmarks/results/versus_official.json``; ``--serve`` is the
line protocol of the driver in ``versus.py``.

Imports the official code needs but the timed paths never use (``timm``'s ``to_2tuple``,
``torchvision``'s ``InterpolationMode``, ``skimage``'s integral image, rho-PNN's missing
``other_scripts.cbam``) are replaced by small stand-ins when they are not installed; so is
``einops.rearrange``, which HSDT's GSSA does use (an equivalent reshape + permute).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import pathlib
import re
import resource
import subprocess
import sys
import tempfile
import time
import types

import numpy as np
import torch
from torch import nn

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "versus_official.json"
_TMP = tempfile.mkdtemp(prefix="versus_official_")


def _stand_in(name: str, **attrs) -> None:
  """Registers module ``name`` (and its parents) with ``attrs`` unless it imports for real."""
  try:
    __import__(name)
    return
  except ImportError:
    pass
  parts = name.split(".")
  for i in range(1, len(parts) + 1):
    sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
  for key, value in attrs.items():
    setattr(sys.modules[name], key, value)


def _install_stand_ins() -> None:
  _stand_in("timm.models.layers", to_2tuple=lambda x: tuple(x) if isinstance(x, tuple) else (x, x))
  _stand_in("torchvision.transforms", InterpolationMode=types.SimpleNamespace(
      BICUBIC="bicubic", BILINEAR="bilinear", NEAREST="nearest"))
  _stand_in("skimage.transform.integral",
            integral_image=lambda img: np.cumsum(np.cumsum(img, 0), 1))
  _stand_in("other_scripts.cbam", CBAM=nn.Identity)
  _stand_in("einops", rearrange=_rearrange)


def _rearrange(x: torch.Tensor, pattern: str, **sizes: int) -> torch.Tensor:
  """``einops.rearrange`` for patterns of names and parenthesised groups (HSDT's GSSA)."""
  groups = lambda side: [g.strip("()").split() for g in re.findall(r"\([^)]*\)|\w+", side)]
  left, right = (groups(side) for side in pattern.split("->"))
  dims = dict(sizes)
  for group, n in zip(left, x.shape, strict=True):
    known = int(np.prod([dims[a] for a in group if a in dims]))
    dims.update({a: n // known for a in group if a not in dims})
  flat = [a for g in left for a in g]
  x = x.reshape([dims[a] for a in flat]).permute([flat.index(a) for g in right for a in g])
  return x.reshape([int(np.prod([dims[a] for a in g])) for g in right])


def checkout(mirrors: str, name: str) -> pathlib.Path:
  """A source tree of repository ``name`` (``owner+repo``) from ``mirrors``."""
  base = pathlib.Path(mirrors) / name
  for git_dir in (base / "repo", base):
    if (git_dir / "HEAD").is_file() and (git_dir / "objects").is_dir():
      out = pathlib.Path(_TMP) / name
      if not out.exists():
        git = ["git", "--git-dir", str(git_dir)]
        files = subprocess.run(git + ["ls-tree", "-r", "--name-only", "HEAD"], check=True,
                               capture_output=True, text=True).stdout.split()
        for path in (f for f in files if f.endswith(".py")):  # snapshots may lack large files
          (out / path).parent.mkdir(parents=True, exist_ok=True)
          (out / path).write_bytes(subprocess.run(git + ["show", f"HEAD:{path}"], check=True,
                                                  capture_output=True).stdout)
      return out
  if base.is_dir():
    return base
  raise FileNotFoundError(f"--mirrors: no repository {name} under {mirrors}")


@contextlib.contextmanager
def on_path(root: pathlib.Path):
  """Imports from ``root``, then forgets the modules it added (the repositories share names)."""
  before = set(sys.modules)
  sys.path.insert(0, str(root))
  try:
    yield
  finally:
    sys.path.remove(str(root))
    for name in set(sys.modules) - before:
      module = sys.modules[name]
      if str(root) in str(getattr(module, "__file__", "") or ""):
        del sys.modules[name]


def _uniform(seed: int, *shape: int) -> torch.Tensor:
  return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def _step(net: nn.Module, optimizer, loss_fn):
  """``train()``: zero_grad, loss, backward, step (the official training loops' order)."""
  def train():
    net.train()
    optimizer.zero_grad()
    loss = loss_fn()
    loss.backward()
    optimizer.step()
    return loss.item()
  return train


def _inference(net: nn.Module, *inputs):
  def infer():
    net.eval()
    with torch.no_grad():
      return net(*inputs)
  return infer


def essaformer_case(mirrors: str, lr_size: int, bands: int = 31, dim: int = 256, scale: int = 4):
  with on_path(checkout(mirrors, "Rexzhan+ESSAformer")):
    import ESSA
  net = ESSA.ESSA(inch=bands, dim=dim, upscale=scale)
  lr = _uniform(0, 1, bands, lr_size, lr_size)
  hr = _uniform(1, 1, bands, scale * lr_size, scale * lr_size)
  optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
  loss = lambda: nn.functional.l1_loss(net(lr), hr)
  return _step(net, optimizer, loss), _inference(net, lr)


def rho_pnn_case(mirrors: str, size: int = 192):
  """One iteration of ``main.py``'s per-band loop (threshold unused by ``StructuralLoss``)."""
  with on_path(checkout(mirrors, "giu-guarino+rho-PNN")):
    import losses
    import networks
    from Utils.spectral_tools import gen_mtf
  ratio, kernel_size = 6, 61
  scope = (kernel_size // ratio) // 2
  net = networks.R_PNN(1, [48, 32, 1], [7, 7, 5])
  spectral = losses.SpectralLossNocorr(gen_mtf(ratio, "PRISMA", kernel_size=kernel_size,
                                               nbands=1), 6, ratio, "cpu")
  structural = losses.StructuralLoss(ratio, "cpu")
  inp = _uniform(0, 1, 2, size, size)
  spec_ref = _uniform(1, 1, 1, size // ratio, size // ratio)[:, :, scope:-scope, scope:-scope]
  struct_ref, threshold = inp[:, -1:], torch.zeros(1, 1, size, size)
  optimizer = torch.optim.Adam(net.parameters(), lr=1e-5)

  def loss():
    out = net(inp)
    return spectral(out, spec_ref) + 1.0 * structural(out, struct_ref, threshold)[0]

  return _step(net, optimizer, loss), _inference(net, inp)


def hyperpnn_case(mirrors: str, batch: int = 4, size: int = 60, bands: int = 159):
  with on_path(checkout(mirrors, "matciotola+hyperspectral_pansharpening_toolbox")):
    from HyperPNN.network import HyperPNN_model
  net = HyperPNN_model(bands)
  pan, hs = _uniform(0, batch, 1, size, size), _uniform(1, batch, bands, size, size)
  gt = _uniform(2, batch, bands, size, size)
  optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
  loss = lambda: nn.functional.mse_loss(net(pan, hs), gt)
  return _step(net, optimizer, loss), _inference(net, pan, hs)


def intl_case(mirrors: str, batch: int = 32, size: int = 32):
  """INTL (CIFAR settings) in a one-process gloo group; ``Tensor.cuda`` is a no-op on CPU."""
  import torch.distributed as dist
  if not dist.is_initialized():
    dist.init_process_group("gloo", init_method=f"file://{_TMP}/gloo", rank=0, world_size=1)
  torch.Tensor.cuda = lambda self, *a, **k: self
  cfg = types.SimpleNamespace(arch="resnet18", dataset="cifar10", projection_layers=3,
                              projection_size=2048, emb=2048, axis=0, iters=4, bs=batch)
  with on_path(checkout(mirrors, "winci-ai+INTL")):
    from methods.intl import INTL
  net = INTL(cfg)
  views = [_uniform(0, batch, 3, size, size), _uniform(1, batch, 3, size, size)]
  optimizer = torch.optim.SGD(net.parameters(), 0.3, momentum=0.9, weight_decay=1e-4)
  return _step(net, optimizer, lambda: net(views)), _inference(net.backbone, views[0])


def _denoiser_step(net: nn.Module, batch: int, size: int, bands: int):
  noisy, clean = _uniform(0, batch, 1, bands, size, size), _uniform(1, batch, 1, bands, size, size)
  optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
  loss = lambda: nn.functional.mse_loss(net(noisy), clean)
  return _step(net, optimizer, loss), _inference(net, noisy)


def hsdt_case(mirrors: str, batch: int = 4, size: int = 64, bands: int = 31):
  """HSDT-M (``hsdt.hsdt()``), MSE + Adam; training mode draws GSSA's branch at random."""
  with on_path(checkout(mirrors, "Zeqiang-Lai+HSDT")):
    import hsdt
  return _denoiser_step(hsdt.hsdt(), batch, size, bands)


def man_case(mirrors: str, batch: int = 4, size: int = 64, bands: int = 31):
  """MAN-M v2 (``man_m()`` of HSIR's ``hsir/model/man/v2.py``, loaded alone), MSE + Adam."""
  import importlib.util
  path = checkout(mirrors, "bit-isp+HSIR") / "hsir" / "model" / "man" / "v2.py"
  spec = importlib.util.spec_from_file_location("man_v2", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return _denoiser_step(module.man_m(), batch, size, bands)


CASES = {
    "essaformer_lr16": lambda m: essaformer_case(m, 16),
    "essaformer_lr32": lambda m: essaformer_case(m, 32),
    "essaformer_lr48": lambda m: essaformer_case(m, 48),
    "rho_pnn": rho_pnn_case,
    "intl_resnet18": intl_case,
    "hyperpnn": hyperpnn_case,
    "hsdt": hsdt_case,
    "man": man_case,
}


def _timed(fn, iters: int) -> list[float]:
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    fn()
    times.append(time.perf_counter() - start)
  return times


def profiler_peak_bytes(fn) -> int:
  """Peak of live CPU bytes allocated during ``fn()`` (the profiler's memory events, in order)."""
  from torch.profiler import ProfilerActivity, profile
  with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
    fn()
  events = sorted((e for e in prof.events() if e.name == "[memory]"),
                  key=lambda e: e.time_range.start)
  deltas = np.array([e.cpu_memory_usage for e in events], np.int64)
  return int(np.max(np.cumsum(deltas), initial=0))


def max_rss_bytes() -> int:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Built:
  def __init__(self, name: str, mirrors: str):
    start = time.perf_counter()
    self.train, self.infer = CASES[name](mirrors)
    self.time(1)  # warm-up
    self.info = {"case": name, "build_s": time.perf_counter() - start,
                 "train_profiler_peak_bytes": profiler_peak_bytes(self.train),
                 "torch": torch.__version__, "threads": torch.get_num_threads()}

  def time(self, iters: int) -> dict[str, list[float]]:
    return {"train_s": _timed(self.train, iters), "infer_s": _timed(self.infer, iters)}


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--mirrors", required=True, help="directory of owner+name repositories")
  parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=list(CASES))
  parser.add_argument("--iters", type=int, default=3)
  parser.add_argument("--serve", action="store_true", help="driver worker (line protocol)")
  args = parser.parse_args()
  torch.set_num_threads(2)
  torch.manual_seed(0)
  _install_stand_ins()
  if args.serve:
    built = {name: Built(name, args.mirrors) for name in args.cases}
    print(json.dumps({"ready": [b.info for b in built.values()]}), flush=True)
    for line in sys.stdin:
      words = line.split()
      if words[:1] == ["time"]:
        print(json.dumps({"case": words[1], **built[words[1]].time(int(words[2]))}), flush=True)
      elif words[:1] == ["quit"]:
        break
    print(json.dumps({"max_rss_bytes": max_rss_bytes()}), flush=True)
    return
  rows = []
  for name in args.cases:
    b = Built(name, args.mirrors)
    row = {**b.info, **b.time(args.iters), "max_rss_bytes": max_rss_bytes()}
    row.update({f"{k}_min_s": min(row[f"{k}_s"]) for k in ("train", "infer")})
    print(json.dumps({k: row[k] for k in ("case", "train_min_s", "infer_min_s")}), flush=True)
    rows.append(row)
  RESULTS.parent.mkdir(exist_ok=True)
  RESULTS.write_text(json.dumps({"benchmark": "versus_official", "torch": torch.__version__,
                                 "python": sys.version.split()[0], "records": rows},
                                indent=2) + "\n")
  print(RESULTS)


if __name__ == "__main__":
  main()
