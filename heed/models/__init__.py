"""Models heed loads offline: bi-encoder, its own cross-encoder, ONNX Runtime, training, explain."""
