"""Small helpers every layer uses: atomic writes, bounded JSON reads, image <-> array, seeded random sources."""
