"""A target's capacity on this machine: measured with rising rates and a catch-up run
(``sweep``), kept for experiments whose rate is a share of it (``store``)."""
