"""csip_reid.data."""
