"""The local stack: Kafka broker, Prefect server, deployments and the processes that serve them."""
