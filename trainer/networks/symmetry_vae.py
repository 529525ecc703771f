"""SymmetryVAE: a variational autoencoder that turns an aligned face into a perfectly symmetric one (vae paper).

The paper's model: a CNN encoder (convolution + ReLU + 2x2 max pooling, alternating, funnel-shaped) gives the mean and
log-variance of the latent code; a deconvolutional decoder (up-sampling + convolution + ReLU, alternating) gives the
image. The latent code here is a small feature map (the paper's decoder starts from "the latent code (feature map)"):
`latent_channels` channels at crop / 2^(levels - 1), which keeps far more of a face's identity than one vector.

Trained in three stages (trainer/train_vae.py): reconstruct faces, then face-only images, then symmetric faces.
`symmetric=True` (stage 3 and the exported model) ends the decoder with the projection onto mirror-symmetric images,
(y + flip(y)) / 2: the output is symmetric about the crop's vertical centre line -- the mid-line, since the alignment
template is mirror-symmetric -- exactly, up to float rounding, whatever the weights.

In training mode the latent is sampled (mu + sigma * eps, the reparameterisation); in eval mode (and in ONNX) it is
the mean, so the exported model is deterministic. `forward` returns "image" (what the runtime reads), "raw" (the
decoder's output before the projection), "mu" and "logvar".
"""
from __future__ import annotations

import torch
from torch import nn

from realtime.errors import UnveilError
from trainer.registry import NETWORKS


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(inplace=True))


@NETWORKS.register("symmetry_vae")
class SymmetryVAE(nn.Module):
    contract_kind = "symmetrization"
    input_roles = ("image",)
    output_roles = ("image",)

    def __init__(self, crop_size: int = 64, widths: tuple[int, ...] = (16, 32, 64), latent_channels: int = 16,
                 symmetric: bool = False):
        super().__init__()
        levels = len(widths)
        if levels < 2:
            raise UnveilError("symmetry_vae needs at least two widths")
        if crop_size % (2 ** (levels - 1)):
            raise UnveilError(f"symmetry_vae crop_size {crop_size} must be divisible by {2 ** (levels - 1)}")
        self.crop_size = int(crop_size)
        self.widths = tuple(int(w) for w in widths)
        self.latent_channels = int(latent_channels)
        self.symmetric = bool(symmetric)
        # encoder: conv + ReLU, max-pool between levels (a funnel: the widths grow as the maps shrink)
        encoder: list[nn.Module] = [_conv(3, widths[0])]
        for i in range(1, levels):
            encoder += [nn.MaxPool2d(2), _conv(widths[i - 1], widths[i]), _conv(widths[i], widths[i])]
        self.encoder = nn.Sequential(*encoder)
        self.to_mu = nn.Conv2d(widths[-1], latent_channels, 1)
        self.to_logvar = nn.Conv2d(widths[-1], latent_channels, 1)
        # decoder: from the latent feature map, up-sampling (transposed convolution) + convolution + ReLU per level
        decoder: list[nn.Module] = [_conv(latent_channels, widths[-1]), _conv(widths[-1], widths[-1])]
        for i in range(levels - 1, 0, -1):
            decoder += [nn.ConvTranspose2d(widths[i], widths[i - 1], 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            if i > 1:
                decoder.append(_conv(widths[i - 1], widths[i - 1]))
        decoder.append(nn.Conv2d(widths[0], 3, 3, padding=1))
        self.decoder = nn.Sequential(*decoder)

    def encode(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(image * 2.0 - 1.0)
        return self.to_mu(features), self.to_logvar(features).clamp(-10.0, 10.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        mu, logvar = self.encode(image)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if self.training else mu
        raw = self.decode(z)
        out = (raw + torch.flip(raw, dims=[3])) * 0.5 if self.symmetric else raw
        return {"image": out, "raw": raw, "mu": mu, "logvar": logvar}


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, sigma^2) || N(0, 1)) per latent element, averaged (the paper's Eq. 13, normalised by size)."""
    return (-0.5 * (1.0 + logvar - mu.pow(2) - logvar.exp())).mean()
