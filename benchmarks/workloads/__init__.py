"""One module per layer family (and one for whole models), each defining WORKLOADS."""
