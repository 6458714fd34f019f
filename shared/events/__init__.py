"""Events: the CloudEvents envelope and the catalogue of versioned payloads."""
