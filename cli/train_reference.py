"""`unveil train-reference`: train the reference-conditioned segmenter (trainer), then calibrate and export it."""
from __future__ import annotations

import argparse
from pathlib import Path

from trainer.train_reference import add_arguments, finish, train  # noqa: F401 - add_arguments: the command's options


def run(args: argparse.Namespace) -> int:
    if not args.finish:
        return train(args)
    from exporters.onnx_export import export_network

    network, threshold, meta = finish(args)
    if args.export:
        export_network(network, args.export, name=Path(args.export).stem, threshold=threshold,
                       margin=float(meta["margin"]), template=str(meta["template"]), exporter="torchscript")
        print(f"wrote {args.export} (threshold {threshold})")
    return 0
