"""The evidence bundle for auditors: gathered from the register (gather), drawn as one self-contained
HTML index (render), and written as a signed, deterministic archive that verifies offline (archive).
Pure: no Prefect, no Kafka; the `aims evidence` commands hand it the register, the audit report and
the Statement of Applicability."""
