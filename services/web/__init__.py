"""Tessera desk: the web front end for workers and managers."""
