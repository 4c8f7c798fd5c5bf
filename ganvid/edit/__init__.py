"""Editing: directions registry, W+ and StyleSpace edits, keyframed strength."""
