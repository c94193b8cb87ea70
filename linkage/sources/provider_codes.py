"""Provider codes (an LA number, an adoption agency's code such as RAA01, DfE) in one spelling.

A code may reach the toolkit as typed after ``--provider``, from a file (the CIN header's LEA,
an ASG file's agency column) or from a mapping, and in any letter case: ``raa01`` and ``RAA01``
are one agency. Every code is written in capitals without surrounding spaces, once, as the
records leave their reader, so that one provider's bundles agree whoever typed its code.
"""

import pandas as pd

from linkage.sources.schema import SourceData


def provider_code(code: object) -> str:
    """One provider code in its one spelling: stripped and in capitals ('' for none)."""
    return "" if code is None else str(code).strip().upper()


def provider_codes(codes: pd.Series) -> pd.Series:
    """A column of provider codes in their one spelling (missing codes as '')."""
    return codes.fillna("").astype(str).str.strip().str.upper()


def same_provider(one: object, other: object) -> bool:
    """Whether two provider codes name one provider (their letter case aside)."""
    return provider_code(one) == provider_code(other)


def with_provider_codes(data: SourceData) -> SourceData:
    """``data`` with the provider code of every record and content row, and the code named
    when the files were read, in their one spelling."""
    data.records = data.records.assign(provider=provider_codes(data.records.provider))
    data.content = {name: (table.assign(provider=provider_codes(table.provider))
                           if "provider" in table else table)
                    for name, table in data.content.items()}
    if data.provider:
        data.provider = provider_code(data.provider)
    return data
