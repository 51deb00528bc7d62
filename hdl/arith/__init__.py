"""Fixed-point arithmetic on Amaranth values (mirrors :mod:`qspec.fixed`)."""
