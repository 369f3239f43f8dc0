"""The journal of effects: which writes have happened, keyed by what identifies them."""
