"""The web UI's pages, one module per part: each has ``routes(ui)``."""
