"""Pure, jit-able quality indices on bands-last arrays, with the papers' conventions as options.

* ``image``: PSNR, SSIM, SAM, ERGAS, RMSE, CC on ``(..., H, W, C)`` (re-exported here);
* ``classification``: confusion matrix, OA, AA, Cohen's kappa, per-class accuracy (re-exported);
* ``pansharpening``: the hyperspectral pansharpening toolbox's indices (Q2n, D_lambda, D_s, D_sR,
  D_rho, HQNR, toolbox ERGAS/SAM) on ``(H, W, C)`` or ``(N, H, W, C)``;
* ``segmentation``: torchmetrics-style micro accuracy, Jaccard, mean IoU and multi-label metrics;
* ``regression``: the HyperView challenge's baseline-normalised MSE (whole split and per-batch
  mean) and RMSE on ``(N, T)`` predictions.
"""

from jspectral.metrics import classification, image
from jspectral.metrics.classification import (
    average_accuracy,
    confusion_matrix,
    kappa,
    overall_accuracy,
    per_class_accuracy,
)
from jspectral.metrics.image import cc, ergas, psnr, quality_report, rmse, sam, ssim

__all__ = [
    "average_accuracy", "cc", "classification", "confusion_matrix", "ergas", "image", "kappa",
    "overall_accuracy", "per_class_accuracy", "psnr", "quality_report", "rmse", "sam", "ssim",
    # submodules imported on use
    "pansharpening", "regression", "segmentation",
]
