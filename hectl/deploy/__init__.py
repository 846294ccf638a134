"""``hectl deploy``: a bare host to a running HA engine, more hosts joining from the domain, one host leaving."""
