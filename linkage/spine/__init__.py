"""The persistent spine: persons with stable keys, their records, versions."""
