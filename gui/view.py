"""The picture: draws the composed BGR image scaled to fit, labels for each half, and the split handle."""
from __future__ import annotations

import numpy as np
from PyQt6.QtCore import QPointF, QRectF, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent, QPen
from PyQt6.QtWidgets import QSizePolicy, QWidget

from gui.overlay import GAP_PX

BACKGROUND = QColor(18, 19, 22)
LABEL_BG = QColor(0, 0, 0, 150)
ACCENT = QColor(94, 176, 255)


class FrameView(QWidget):
    split_changed = pyqtSignal(float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(320, 200)
        self.image: QImage | None = None
        self._pixels: np.ndarray | None = None   # keeps the buffer behind `image` alive
        self.compare = "side_by_side"
        self.split = 0.5
        self.placeholder = "Open a video file (O), an image (I) or pick a camera"

    def show_image(self, bgr: np.ndarray, compare: str, split: float) -> None:
        self._pixels = np.ascontiguousarray(bgr)
        height, width = self._pixels.shape[:2]
        self.image = QImage(self._pixels.data, width, height, 3 * width, QImage.Format.Format_BGR888)
        self.compare, self.split = compare, split
        self.update()

    def clear(self, placeholder: str | None = None) -> None:
        self.image, self._pixels = None, None
        if placeholder is not None:
            self.placeholder = placeholder
        self.update()

    def displayed_pixels(self) -> np.ndarray | None:
        """The BGR array currently on screen (before scaling); for tests and snapshots of the view."""
        return self._pixels

    def image_rect(self) -> QRectF:
        if self.image is None:
            return QRectF()
        scale = min(self.width() / self.image.width(), self.height() / self.image.height())
        w, h = self.image.width() * scale, self.image.height() * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), BACKGROUND)
        if self.image is None:
            painter.setPen(QColor(150, 155, 165))
            painter.setFont(QFont(self.font().family(), 13))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.placeholder)
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        target = self.image_rect()
        painter.drawImage(target, self.image)
        if self.compare == "side_by_side":
            half = (target.width() - GAP_PX * target.width() / self.image.width()) / 2
            self._label(painter, QPointF(target.left() + 10, target.top() + 10), "Original")
            self._label(painter, QPointF(target.right() - half + 10, target.top() + 10), "Result")
        elif self.compare == "split":
            x = target.left() + self.split * target.width()
            painter.setPen(QPen(ACCENT, 2))
            painter.drawLine(QPointF(x, target.top()), QPointF(x, target.bottom()))
            painter.setBrush(ACCENT)
            painter.drawEllipse(QPointF(x, target.center().y()), 7, 7)
            self._label(painter, QPointF(target.left() + 10, target.top() + 10), "Original")
            self._label(painter, QPointF(target.right() - 70, target.top() + 10), "Result")
        else:
            self._label(painter, QPointF(target.left() + 10, target.top() + 10), "Result")

    def _label(self, painter: QPainter, at: QPointF, text: str) -> None:
        metrics = painter.fontMetrics()
        box = QRectF(at.x(), at.y(), metrics.horizontalAdvance(text) + 14, metrics.height() + 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(LABEL_BG)
        painter.drawRoundedRect(box, 5, 5)
        painter.setPen(QColor(235, 235, 240))
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _drag_split(self, event: QMouseEvent) -> None:
        target = self.image_rect()
        if self.compare != "split" or target.width() <= 0:
            return
        self.split = float(np.clip((event.position().x() - target.left()) / target.width(), 0.0, 1.0))
        self.split_changed.emit(self.split)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self._drag_split(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag_split(event)
