"""Unveil runtime: capture -> detect -> align -> infer -> blend. Never imports torch."""
