"""Unveil exporters: trained checkpoint -> ONNX file carrying its model contract, checked against torch."""
