"""Unveil trainer: data preparation, occlusion synthesis, networks, losses, training loop, evaluation."""
