"""Neural Spectral Methods: operator learning with a spectral (Parseval) loss, and its solvers.

Du, Chalapathi, Krishnapriyan, "Neural Spectral Methods: Self-supervised learning in the spectral
domain" (ICLR 2024, arXiv 2312.05225), after the official JAX code
(github.com/ASK-Berkeley/Neural-Spectral-Methods). Modules:

* ``bases``: Fourier and Chebyshev series on ``[0, 1]^d`` as pure functions of coefficient arrays
  (transform, inverse, derivatives, integrals, products).
* ``problems``: the PDEs (periodic / Dirichlet Poisson, reaction-diffusion, Navier-Stokes):
  Gaussian-process parameter priors, hard constraints, spectral and grid residuals.
* ``solvers``: differentiable reference solvers and the diffusivity inverse problem.
* ``nsm``: the NSM, SNO and FNO/CNO + PINN models, the spectral and PINN losses and prediction.
* ``tasks``: the :func:`jspectral.train.fit` task for self-supervised operator learning.
* ``protocol``: the paper's evaluation, the relative L2 error of predicted solution fields.
* ``figures``: reference vs predicted fields, error maps and learning curves.

Importing this package loads none of its modules; import them by name
(``from jspectral.pde import bases``).
"""

__all__ = ["bases", "problems", "solvers", "nsm", "tasks", "protocol", "figures"]
