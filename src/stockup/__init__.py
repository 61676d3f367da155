"""stockup: upload a contributor's artworks to many microstock agencies at once."""

__version__ = "0.1.0"
