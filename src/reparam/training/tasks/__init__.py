"""Task definitions: each model's part of a ``reparam train`` run (build, one step's loss,
evaluation, state, plots); :func:`reparam.training.engine.fit` does the rest."""
