"""comparison: N paired runs of several configurations in one folder (`runner.Comparison`)."""
