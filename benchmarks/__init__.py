"""composite's benchmarks: ``python -m benchmarks`` (or ``composite bench``); see benchmarks/README.md."""
