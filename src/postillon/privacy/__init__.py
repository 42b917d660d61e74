"""Privacy: GDPR export and erasure, and the suppression list of addresses not to take in."""
