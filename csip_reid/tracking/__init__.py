"""csip_reid.tracking."""
