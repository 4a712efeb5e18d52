"""Models heed loads offline: the bi-encoder, its own cross-encoder, ONNX runtime, training, explain."""
