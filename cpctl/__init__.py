"""cpctl: the control plane's command-line client (docs/cli.md). It talks HTTP only and never imports Django,
so it runs anywhere the API is reachable."""

__version__ = "0.1.0"
