"""`unveil train-vae`: train the symmetric-face VAE (trainer), then export it with its contract (exporters)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from trainer.train_vae import add_arguments, load_network, train, validate  # noqa: F401 - add_arguments: the options


def run(args: argparse.Namespace) -> int:
    if not args.export:
        return train(args)
    import torch

    from exporters.onnx_export import export_with_report
    from trainer.data import FaceStore

    torch.set_num_threads(args.threads)
    network, settings = load_network(Path(args.out) / "last.pt")
    result = export_with_report(network, args.export, name=Path(args.export).stem, margin=settings["margin"],
                                template=settings["template"], exporter="torchscript")
    report = {"model": str(args.export), "step": settings["step"], "parity_max_abs_diff": result.max_abs_diff}
    if args.validate:
        report["validation"] = validate(network, FaceStore(args.data), args.validate, int(settings["size"]))
    print(json.dumps(report, indent=2))
    (Path(args.out) / "export.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.export} ({Path(args.export).stat().st_size / 1e6:.2f} MB, kind symmetrization)")
    return 0
