"""What a config names, built: the network, the discriminators and the losses, with errors that say which entry
of the config is wrong."""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch
from torch import nn

from realtime.errors import UnveilError
from trainer.config import Named
from trainer.losses import LossContext
from trainer.registry import DISCRIMINATORS, LOSSES, NETWORKS


def build_network(spec: Named) -> nn.Module:
    try:
        network = NETWORKS.build(spec.name, **spec.args)
    except UnveilError:
        raise
    except (TypeError, ValueError) as exc:
        raise UnveilError(f"config: network {spec.name!r} rejects its args {spec.args}: {exc}") from None
    for attr in ("contract_kind", "input_roles", "output_roles", "crop_size"):
        if not hasattr(network, attr):
            raise UnveilError(f"network {spec.name!r} lacks the generator attribute {attr!r}")
    return network


def build_discriminator(name: str, args: dict, defaults: dict[str, Any]) -> nn.Module:
    """Build a discriminator; crop_size / template / margin come from the network and dataset unless given."""
    builder = DISCRIMINATORS.get(name)
    accepted = inspect.signature(builder).parameters
    args = {**{k: v for k, v in defaults.items() if k in accepted}, **args}
    try:
        return builder(**args)
    except (TypeError, ValueError) as exc:
        raise UnveilError(f"config: discriminator {name!r} rejects its args {args}: {exc}") from None


LossFn = Callable[[dict, dict, LossContext], torch.Tensor]


def build_loss(spec: Named) -> LossFn:
    """A registered loss class is built with its args; a registered plain function is the loss itself
    (it may take (out, batch) or (out, batch, ctx))."""
    entry = LOSSES.get(spec.name)
    if inspect.isclass(entry):
        try:
            return entry(**spec.args)
        except (TypeError, ValueError) as exc:
            raise UnveilError(f"config: loss {spec.name!r} rejects its args {spec.args}: {exc}") from None
    if spec.args:
        raise UnveilError(f"config: loss {spec.name!r} takes no args, got {spec.args}")
    if len(inspect.signature(entry).parameters) >= 3:
        return entry
    return lambda out, batch, ctx: entry(out, batch)
