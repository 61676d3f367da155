"""What `stockup demo` runs on: sample artworks, a local CA and in-process
servers, all on loopback. Nothing here contacts any other address."""
