"""`unveil train-segmenter`: train the occlusion segmenter (trainer), then calibrate it and export it (exporters)."""
from __future__ import annotations

import argparse
from pathlib import Path

from trainer.train_segmenter import add_arguments, finish, train  # noqa: F401 - add_arguments: the command's options


def run(args: argparse.Namespace) -> int:
    if not args.finish:
        return train(args)
    from exporters.onnx_export import export_network

    finished = finish(args)
    if args.export:
        export_network(finished.network, args.export, name=Path(args.export).stem, threshold=finished.threshold,
                       margin=finished.margin, template=finished.template, exporter="torchscript")
        print(f"wrote {args.export} (threshold {finished.threshold})")
    return 0
