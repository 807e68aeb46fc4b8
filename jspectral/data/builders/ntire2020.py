"""NTIRE 2020 spectral recovery challenge hyperspectral images (ARAD_HS; Arad et al., CVPRW
2020): 482 x 512 px, 31 bands (400-700 nm), MATLAB v7.3 files ``ARAD_HS_NNNN.mat`` with the cube
in ``cube``.

Configuration ``sr`` (Spectral Mixup SR, specs/hsi_sr_mixup.md section 6): values as stored (no
normalisation, as the official ``crop_image.m``); splits ``labeled`` (105 images), ``unlabeled``
(315) and ``test`` (40) from the paper's ``image_list/nitre2020_list.txt`` (kli8996/HSISR), which
draws on the challenge's training (0001-0450) and validation (0451-0465) images.
"""

from __future__ import annotations

from jspectral.data import tfds as tfds_lib

_SR_LABELED_IDS = (
    5, 6, 10, 18, 21, 22, 24, 29, 33, 34, 37, 40, 41, 43, 47, 50, 51, 53, 57, 64, 66, 71, 72,
    76, 83, 87, 92, 98, 100, 103, 110, 111, 114, 116, 120, 121, 130, 132, 133, 152, 157, 158,
    161, 166, 168, 169, 171, 177, 185, 189, 191, 194, 195, 202, 205, 207, 214, 218, 220, 224,
    225, 228, 230, 231, 234, 237, 251, 254, 256, 258, 263, 267, 271, 272, 273, 278, 280, 283,
    286, 287, 307, 309, 321, 330, 334, 336, 338, 341, 342, 349, 351, 352, 354, 362, 363, 367,
    382, 387, 395, 397, 407, 412, 414, 415, 420)
_SR_UNLABELED_IDS = (
    1, 2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 19, 20, 23, 25, 26, 27, 28, 30, 31, 32, 35,
    36, 38, 39, 42, 44, 45, 46, 48, 49, 52, 54, 55, 56, 58, 59, 60, 61, 62, 63, 65, 67, 68, 69,
    70, 73, 74, 75, 77, 78, 79, 80, 81, 82, 84, 85, 86, 88, 89, 90, 91, 93, 94, 95, 96, 97, 99,
    101, 102, 104, 105, 106, 107, 108, 109, 112, 113, 115, 117, 118, 119, 122, 123, 124, 125,
    126, 127, 128, 129, 131, 134, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144, 145, 146,
    147, 148, 149, 150, 151, 153, 154, 155, 156, 159, 160, 162, 163, 164, 165, 167, 170, 172,
    173, 174, 175, 176, 178, 179, 180, 181, 182, 183, 184, 186, 187, 188, 190, 192, 193, 196,
    197, 198, 199, 200, 201, 203, 204, 206, 208, 209, 210, 211, 212, 213, 215, 216, 217, 219,
    221, 222, 223, 226, 227, 229, 232, 233, 235, 236, 238, 239, 240, 241, 242, 243, 244, 245,
    246, 247, 248, 249, 250, 252, 253, 255, 257, 259, 260, 261, 262, 264, 265, 266, 268, 269,
    270, 274, 275, 276, 277, 279, 281, 282, 284, 285, 288, 289, 290, 291, 292, 293, 294, 295,
    296, 297, 298, 299, 300, 301, 302, 303, 304, 305, 306, 308, 310, 311, 312, 313, 314, 315,
    316, 317, 318, 319, 320, 322, 323, 324, 325, 326, 327, 328, 329, 331, 332, 333, 335, 337,
    339, 340, 343, 344, 345, 346, 347, 348, 350, 353, 355, 356, 357, 358, 359, 360, 361, 364,
    365, 366, 368, 369, 370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 380, 381, 383, 384,
    385, 386, 388, 389, 390, 391, 392, 393, 394, 396, 398, 399, 400, 401, 402, 403, 404, 405,
    406, 408, 409, 410, 411, 413, 416, 417, 418, 419)
_SR_TEST_IDS = (
    421, 422, 423, 424, 425, 426, 427, 428, 429, 430, 431, 432, 433, 434, 435, 436, 437, 438,
    439, 440, 441, 442, 443, 444, 445, 446, 447, 448, 449, 450, 451, 453, 455, 456, 457, 459,
    462, 463, 464, 465)


def _names(ids: tuple[int, ...]) -> tuple[str, ...]:
  return tuple(f"ARAD_HS_{i:04d}" for i in ids)


SR_LABELED, SR_UNLABELED, SR_TEST = map(_names, (_SR_LABELED_IDS, _SR_UNLABELED_IDS, _SR_TEST_IDS))


class Ntire2020(tfds_lib.ImageSetBuilder):
  """NTIRE 2020 ARAD_HS images as ``(482, 512, 31)`` cubes."""

  BUILDER_CONFIGS = [
      tfds_lib.ImageSetConfig(name="sr", files=("ARAD_HS_*.mat",),
                              splits=(("labeled", SR_LABELED), ("unlabeled", SR_UNLABELED),
                                      ("test", SR_TEST)), normalisation="none"),
  ]
  HOMEPAGE = "https://competitions.codalab.org/competitions/22225"
  DESCRIPTION = "NTIRE 2020 spectral recovery (ARAD_HS) hyperspectral images, 31 bands."
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Download the NTIRE 2020 spectral recovery challenge data (ARAD_HS training and validation
  spectral images, NTIRE2020_Train_Spectral and NTIRE2020_Validation_Spectral) and put every
  ARAD_HS_NNNN.mat file (variable `cube`) directly in the manual directory.
  """

  def _read_image(self, manual_dir, name):
    return tfds_lib.load_mat(tfds_lib.mat_path(manual_dir, name), "cube")
