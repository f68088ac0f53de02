"""A small Flower app: softmax regression in NumPy, trained with or without secure aggregation."""
