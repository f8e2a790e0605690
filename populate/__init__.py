"""Sample source generators: the MySQL B2B order database (``python -m populate orders``)."""
