"""Black-box methods: they only run the model, many times, through the batched engine.

:mod:`~salvo.methods.black_box.base` (the base class, scoring), :mod:`~.rise` (RISE),
:mod:`~.drise` (D-RISE), :mod:`~.aise` (AISE for classification and detection),
:mod:`~.detection` (reading detections, matching boxes), :mod:`~.utils` (the reference's
output checks). The classes are registered in :mod:`salvo.methods.factory`.
"""
