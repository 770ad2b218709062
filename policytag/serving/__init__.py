"""Inference: batch prediction, ONNX runtime, the Gradio app (package ``policytag.serving``)."""
