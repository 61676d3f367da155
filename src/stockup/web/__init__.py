"""`stockup ui`: a local web UI over the same library as the CLI."""
