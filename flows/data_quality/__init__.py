"""Data quality (A.7): drift rules and the data-quality flow."""
