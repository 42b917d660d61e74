"""Events: the timeline of what each contact did and what happened to them."""
