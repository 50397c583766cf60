"""`newswatch demo`: the bundled offline news site, loopback receivers, and the run that ties
them together."""
