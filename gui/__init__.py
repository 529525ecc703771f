"""The PyQt6 viewer: a thin shell over `realtime`'s pipeline (`unveil live` without --headless)."""
