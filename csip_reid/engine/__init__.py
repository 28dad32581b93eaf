"""csip_reid.engine."""
