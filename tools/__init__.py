"""Small reference tools that sit outside the services (e.g. a finance consumer of purchasing.orders)."""
