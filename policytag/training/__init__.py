"""Training, evaluation and the model directory (package ``policytag.training``)."""
