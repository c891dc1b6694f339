"""Observation: the run's Prometheus and the PromQL client the checks read it through."""
