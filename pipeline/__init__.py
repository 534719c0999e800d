"""The pipeline's wiring: step adapters, the ASL and the DAG built from it, the service stack,
`riskstream run` and the CLI aggregator. The only package that knows every capability."""
