"""Explanation methods: ``whitebox`` edits the OpenVINO graph, ``blackbox`` only runs the model."""
