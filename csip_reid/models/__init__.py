"""csip_reid.models."""
