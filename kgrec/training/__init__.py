"""Training machinery shared by the gradient-trained estimators: the epoch loop with validation and
early stopping, losses, crash-safe checkpoints and distributed data parallelism. Below
``kgrec.models`` (an estimator's ``fit`` drives it); above ``kgrec.nn`` and ``kgrec.evaluation``.
"""
