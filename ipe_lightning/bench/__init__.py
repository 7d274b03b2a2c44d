"""Benchmarks, not tests: ``python -m ipe_lightning.bench <name> [args]`` runs
``ipe_lightning.bench.<name>.main(args)``; ``python -m ipe_lightning.bench`` lists them."""
