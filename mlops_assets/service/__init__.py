"""Online prediction service (BentoML) over the champion model and the Feast online store."""
