"""Domain logic without Dagster: each module does one job and is testable on its own."""
