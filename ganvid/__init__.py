"""ganvid: edit real face videos with GANs."""

__version__ = "0.1.0"
