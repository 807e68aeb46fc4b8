"""Pure, jit-able quality indices. ``image``: PSNR, SSIM, SAM, ERGAS, RMSE, CC;
``classification``: confusion matrix, OA, AA, kappa."""

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
]
