"""Triggers: wait in the triggerer, never do work."""
