"""Training: the Distiller module, the teacher, cached teacher outputs and the training loop."""
