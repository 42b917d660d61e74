"""Lead scoring: score models, rules on events, thresholds, decay and history."""
