"""A small face parser for FCSR-GAN's face-parsing loss, trained on labels rasterised from the face mesh.

The paper trains SegNet on Helen's hand-drawn labels; we have no parsing labels, but every prepared crop carries 69
face-mesh points (trainer.prepare: jaw, brows, nose, eyes, outer and inner lips). `parsing_labels` rasterises them
into six classes -- background, skin, brows, eyes, nose, mouth -- and `FaceParser`, a tiny U-Net at 64 px, learns to
predict them from the image. In training the completion network, the parser (frozen) looks at the network's output
and its cross-entropy against the true face's labels is the parsing loss; its encoder features stand in for the
paper's VGG-19 perceptual features (no pretrained VGG weights here).
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

CLASSES = ("background", "skin", "brows", "eyes", "nose", "mouth")
PARSER_SIZE = 64

# positions in the prepared 69-point subset (trainer.prepare.LANDMARK_GROUPS order)
JAW = slice(0, 17)
BROWS = (slice(17, 22), slice(22, 27))
NOSE = slice(28, 37)          # without 168 (between the eyes)
EYES = (slice(37, 43), slice(43, 49))   # each: outer/inner corner, upper lid, lower lid, in ring order
MOUTH = slice(49, 61)         # outer lip ring


def parsing_labels(points: np.ndarray, size: int) -> np.ndarray:
    """(size, size) uint8 class map (CLASSES) of a crop from its 69 prepared landmarks (crop pixels)."""
    scale = 16  # sub-pixel precision for cv2's fixed-point drawing
    label = np.zeros((size, size), np.uint8)
    pts = lambda p: np.round(np.asarray(p, np.float64) * scale).astype(np.int32)  # noqa: E731
    jaw, brows = points[JAW], points[17:27]
    eyes_y = points[37:49, 1].mean()
    lift = max(float(eyes_y - brows[:, 1].mean()), 2.0) * 1.5
    top = brows.copy()
    top[:, 1] -= lift
    hull = cv2.convexHull(pts(np.concatenate([jaw, top])))
    cv2.fillConvexPoly(label, hull, 1, cv2.LINE_8, 4)
    thickness = max(int(round(size * 0.03)), 1)
    for part in BROWS:
        cv2.polylines(label, [pts(points[part])], False, 2, thickness, cv2.LINE_8, 4)
    cv2.fillConvexPoly(label, cv2.convexHull(pts(points[NOSE])), 4, cv2.LINE_8, 4)
    for part in EYES:
        cv2.fillPoly(label, [pts(points[part])], 3, cv2.LINE_8, 4)
    cv2.fillPoly(label, [pts(points[MOUTH])], 5, cv2.LINE_8, 4)
    return label


def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FaceParser(nn.Module):
    """(N,3,S,S) image in [0, 1] -> (N,6,64,64) class logits (the input is resized to 64 px first)."""

    def __init__(self, width: int = 16):
        super().__init__()
        self.enc1 = _block(3, width)
        self.enc2 = _block(width, 2 * width)
        self.enc3 = _block(2 * width, 4 * width)
        self.dec2 = _block(4 * width + 2 * width, 2 * width)
        self.dec1 = _block(2 * width + width, width)
        self.head = nn.Conv2d(width, len(CLASSES), 1)

    def features(self, image: torch.Tensor) -> list[torch.Tensor]:
        x = image if image.shape[-1] == PARSER_SIZE else F.interpolate(image, size=(PARSER_SIZE, PARSER_SIZE),
                                                                        mode="bilinear", align_corners=False,
                                                                        antialias=True)
        f1 = self.enc1(x)
        f2 = self.enc2(F.max_pool2d(f1, 2))
        f3 = self.enc3(F.max_pool2d(f2, 2))
        return [f1, f2, f3]

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        f1, f2, f3 = self.features(image)
        y = self.dec2(torch.cat([F.interpolate(f3, scale_factor=2.0), f2], 1))
        y = self.dec1(torch.cat([F.interpolate(y, scale_factor=2.0), f1], 1))
        return self.head(y)


def labels_tensor(points: list[np.ndarray], crop_size: int) -> torch.Tensor:
    """(N, 64, 64) int64 labels for crops of `crop_size` with these landmarks."""
    factor = PARSER_SIZE / crop_size
    return torch.from_numpy(np.stack([parsing_labels(p * factor, PARSER_SIZE) for p in points]).astype(np.int64))


def parsing_accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Pixel accuracy and mean IoU over the face classes (skin..mouth)."""
    pred = logits.argmax(1)
    ious = []
    for c in range(1, len(CLASSES)):
        inter = ((pred == c) & (labels == c)).sum().item()
        union = ((pred == c) | (labels == c)).sum().item()
        if union:
            ious.append(inter / union)
    return {"accuracy": float((pred == labels).float().mean()), "miou": float(np.mean(ious)) if ious else float("nan")}
