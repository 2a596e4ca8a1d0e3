"""Command schemas, one module per service that handles them."""
