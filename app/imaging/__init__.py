"""Images in and out: decoding uploads safely, turning them into model input, encoding them for display."""
