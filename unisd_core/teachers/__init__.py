"""Teachers: their contexts (gold, auxiliary, negative) and the EMA teacher update."""
