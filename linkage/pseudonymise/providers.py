"""Moved to :mod:`linkage.pipelines.delivery`, where `linkage hash-delivery` and `linkage demo`
share it; these names stay importable from here for scripts that use them."""

from linkage.pipelines.delivery import hash_providers, provider_jobs

__all__ = ["hash_providers", "provider_jobs"]
