"""csip_reid.pipeline."""
