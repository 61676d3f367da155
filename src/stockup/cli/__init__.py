"""The command-line front end: a thin layer over the library API."""
