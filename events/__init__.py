"""The Kafka side: topics, codec, routing table, router, producer, dead letters."""
