"""Deployment formats, each route declared by the architecture's spec: ONNX (`onnx_export`) and Core ML
(`coreml_export`)."""
