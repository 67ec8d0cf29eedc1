"""HTTP surfaces, one blueprint per module; views never call the X API."""
